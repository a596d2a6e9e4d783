"""The few rtnetlink messages that the start of a container reads, parsed
by hand: route events (has pasta configured the namespace?), qdisc and
device statistics (did anything leave it, and has pasta read it all?).  pyroute2, used for everything else
(bridge.py), costs ~130 ms to import: more than a whole `run`."""

import os
import select

RTM_NEWROUTE = 24
RT_TABLE_MAIN = 254
RTM_GETLINK, RTM_GETQDISC = 18, 38
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCA_STATS = 3
IFLA_STATS64 = 23


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


def _dump(watch, kind, header, seq):
    """The bodies of the answers to a dump request of ``kind`` (an
    RTM_GET*, with an empty ``header``-byte struct after the nlmsghdr),
    read from ``watch``; None when the kernel refuses or says nothing for
    0.5 s."""
    os.write(watch, (16 + header).to_bytes(4, "little") + kind.to_bytes(2, "little") +
             (0x301).to_bytes(2, "little") + seq.to_bytes(4, "little") + bytes(4 + header))
    bodies = []
    while True:
        if not select.select([watch], [], [], 0.5)[0]:
            return None
        for got, got_seq, body in messages(os.read(watch, 65536)):
            if got_seq != seq:
                continue                 # a route event, not our answer
            if got == NLMSG_DONE:
                return bodies
            if got == NLMSG_ERROR:
                return None
            bodies.append(body)


def tap_frames(watch):
    """(sent, read): the frames that left the namespace of ``watch`` (a
    netlink socket in it) for devices other than lo, as their qdiscs count
    them (struct tc_stats: u64 bytes, u32 packets, ...), and those that
    the devices' reader took (a tap's tx_packets: the kernel counts them
    when its reader, pasta, reads them; struct rtnl_link_stats64: u64
    rx_packets, tx_packets, ...).  None when unsure."""
    qdiscs = _dump(watch, RTM_GETQDISC, 20, 0x5B0C)      # struct tcmsg
    links = _dump(watch, RTM_GETLINK, 16, 0x5B0D)        # struct ifinfomsg
    if qdiscs is None or links is None:
        return None
    sent = read = 0
    for body, stats_attr, start in [(q, TCA_STATS, 20) for q in qdiscs] + \
            [(link, IFLA_STATS64, 16) for link in links]:
        if len(body) < start or int.from_bytes(body[4:8], "little") == 1:
            continue                     # lo (ifindex 1)
        values = [value for attr_type, value in attributes(body[start:])
                  if attr_type == stats_attr and len(value) >= 16]
        if not values:
            return None                  # (a device without a qdisc: noqueue)
        if stats_attr == TCA_STATS:
            sent += int.from_bytes(values[0][8:12], "little")
        else:
            read += int.from_bytes(values[0][8:16], "little")
    return sent, read


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
