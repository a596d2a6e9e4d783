"""`exec`: run a command in a running container."""

import os

from ..errors import SandboxError, UsageError


def register(sub):
    p = sub.add_parser("exec", help="run a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true", help="pass stdin")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-d", "--detach", action="store_true",
                   help="run the command in the background")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]")
    p.add_argument("--privileged", action="store_true",
                   help="every capability of the user namespace")
    p.add_argument("--detach-keys", metavar="KEYS",
                   help="(with -it) the keys that detach, leaving the command running "
                        "(default \"ctrl-p,ctrl-q\")")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs="...", metavar="CMD")
    p.set_defaults(func=cmd_exec)


def cmd_exec(args, paths):
    if not args.command:
        raise UsageError("exec needs a command", hint="sandbox exec CONTAINER CMD [ARG...]")
    from ..container import exec as cexec, runtime, security, spec as spec_mod, state
    spec_mod.check_workdir(args.workdir)
    from ..userns import current_id_map
    keys = None
    if args.tty and args.interactive and not args.detach or args.detach_keys is not None:
        from ..container.attach import parse_detach_keys
        keys = parse_detach_keys(args.detach_keys)      # refused before anything runs
    cid = state.resolve(paths, args.container)
    st = state.refresh(paths, cid)
    if not state.is_running(st) or not state.alive(st.get("Pid"), st.get("PidStart")):
        raise SandboxError("container %s is not running" % args.container,
                           hint="start it first: sandbox start %s" % args.container,
                           exit_code=1)
    if st.get("Status") == "paused":
        raise SandboxError("container %s is paused, unpause it first" % args.container,
                           exit_code=1)
    if st.get("Emulated"):
        from ..container import emulation
        emulation.prepare(st["Emulated"])   # (its keeper may be gone since the start)
    spec, process, cgroup = cexec.starting_point(paths, cid, st)
    env = list(args.env)
    for f in args.env_file:
        env = spec_mod.parse_env_file(f) + env
    process["env"] = spec_mod.merge_env(process.get("env"), env)
    process["args"] = list(args.command)
    process["terminal"] = bool(args.tty)
    if args.workdir:
        process["cwd"] = args.workdir
    if args.user is not None:
        # The container's own /etc/passwd, seen through its PID 1.
        root = "/proc/%d/root" % st["Pid"]
        process["user"], _ = spec_mod.resolve_user(args.user, [root])
    if args.privileged:
        caps = security.effective_caps([], [], True)
        process["capabilities"] = {"bounding": caps, "effective": caps,
                                   "permitted": caps, "inheritable": []}
    if args.tty and args.interactive and not args.detach and not os.isatty(0):
        raise UsageError("the input device is not a TTY",
                         hint="drop -t when stdin is a pipe or file")
    # Docker's exec events (events.py); exec_die when we see the end
    from .. import events
    exec_id = os.urandom(32).hex()
    what = " ".join(args.command)
    events.container(paths, cid, st, "exec_create: " + what, execID=exec_id)
    events.container(paths, cid, st, "exec_start: " + what, execID=exec_id)
    code = None
    # With -d (and -it, which the detach keys may leave running), the
    # command's end is seen by a process of ours that waits for it
    # (cexec.run), in the container's mount namespace: the log is opened
    # for it now.
    log = events.open_log(paths) if args.detach or keys else None
    on_exit = None
    if log is not None:
        def exec_died(status):
            events.write_line(log, events.container_line(
                cid, st, "exec_die", execID=exec_id, exitCode=status))
        on_exit = exec_died
    try:
        code = cexec.run(st["Pid"], process, spec.get("linux", {}),
                         runtime.user_map_of(spec, current_id_map()),
                         tty=args.tty, stdin=args.interactive, detach=args.detach,
                         cgroup=cgroup, on_detached_exit=on_exit, detach_keys=keys)
        if code == "detached":
            code = None         # (it runs on; X writes its exec_die)
            return 0
    except SandboxError as exc:
        code = exc.exit_code
        raise
    finally:
        if log is not None:
            os.close(log)
        if code is not None and not args.detach:
            events.container(paths, cid, st, "exec_die", execID=exec_id, exitCode=code)
    return code
