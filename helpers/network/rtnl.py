"""The few rtnetlink messages that the start of a container reads, parsed
by hand: route events (has pasta configured the namespace?) and qdisc
statistics (did anything leave it?).  pyroute2, used for everything else
(bridge.py), costs ~130 ms to import: more than a whole `run`."""

import os
import select

RTM_NEWROUTE = 24
RT_TABLE_MAIN = 254
RTM_NEWQDISC, RTM_GETQDISC = 36, 38
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCA_STATS = 3


def _records(data, head, width):
    """(start, end) of each record of a netlink stream in ``data``: its
    length is the first ``width`` bytes of a ``head``-byte header, and the
    next record starts at a 4-byte boundary (messages: 16 and 4,
    attributes: 4 and 2)."""
    offset = 0
    while offset + head <= len(data):
        length = int.from_bytes(data[offset:offset + width], "little")
        if length < head:
            return
        yield offset, offset + length
        offset += (length + 3) & ~3


def messages(data):
    """(type, seq, body) of each netlink message (struct nlmsghdr) in ``data``."""
    for start, end in _records(data, 16, 4):
        yield (int.from_bytes(data[start + 4:start + 6], "little"),
               int.from_bytes(data[start + 8:start + 12], "little"),
               data[start + 16:end])


def frames_sent(watch, seq=0x5B0C):
    """Whether anything ever left the namespace of ``watch`` (a netlink
    socket in it) for a device other than lo: the packets its qdiscs have
    passed on (struct tc_stats: u64 bytes, u32 packets, ...), which a
    tap device queues for its reader.  True when unsure."""
    # struct nlmsghdr (RTM_GETQDISC, NLM_F_REQUEST | NLM_F_DUMP), then an
    # empty struct tcmsg: every qdisc of every device
    os.write(watch, (36).to_bytes(4, "little") + RTM_GETQDISC.to_bytes(2, "little") +
             (0x301).to_bytes(2, "little") + seq.to_bytes(4, "little") + bytes(24))
    sent = 0
    while True:
        if not select.select([watch], [], [], 0.5)[0]:
            return True
        for kind, got_seq, body in messages(os.read(watch, 65536)):
            if got_seq != seq:
                continue                 # a route event, not our answer
            if kind in (NLMSG_DONE, NLMSG_ERROR):
                return sent > 0 or kind == NLMSG_ERROR
            if kind != RTM_NEWQDISC or len(body) < 20:
                continue
            if int.from_bytes(body[4:8], "little") == 1:
                continue                 # lo
            stats = None
            for attr_type, value in attributes(body[20:]):
                if attr_type == TCA_STATS and len(value) >= 12:
                    stats = int.from_bytes(value[8:12], "little")
            if stats is None:
                return True
            sent += stats


def attributes(data):
    """(type, value) of the netlink attributes (struct rtattr) in ``data``."""
    for start, end in _records(data, 4, 2):
        yield (int.from_bytes(data[start + 2:start + 4], "little") & 0x3FFF,
               data[start + 4:end])


def default_routes(data):
    """The address families of the default routes (main table) that the
    netlink messages in ``data`` add (struct rtmsg: family, dst_len,
    src_len, tos, table...)."""
    for kind, _, body in messages(data):
        if kind == RTM_NEWROUTE and len(body) >= 5 and body[1] == 0 \
                and body[4] == RT_TABLE_MAIN:
            yield body[0]
