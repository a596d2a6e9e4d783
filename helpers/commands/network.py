"""Network verbs: `port` (user-defined networks, `network ...`, are not
there yet)."""

from ..errors import SandboxError


def register(sub):
    p = sub.add_parser("port", help="list a container's published ports",
                       description="List port mappings of a container, or "
                                   "the mapping of one of its ports.")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PORT[/PROTO]")
    p.set_defaults(func=cmd_port)


def cmd_port(args, paths):
    from ..container import state
    from ..network import port_lines
    cid = state.resolve(paths, args.container)
    st = state.refresh(paths, cid)
    which = None
    if args.port:
        port, _, proto = args.port.partition("/")
        which = "%s/%s" % (port, proto or "tcp")
    lines = port_lines(st, which) if state.is_running(st) else []
    if which and not lines:
        raise SandboxError("No public port '%s' published for %s" % (
            which, args.container), exit_code=1)
    for line in lines:
        print(line)
    return 0
