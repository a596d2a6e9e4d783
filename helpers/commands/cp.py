"""`cp [-a] [-L] SRC DEST`: copy between a container and the host, as
`docker cp` does.  The container side runs inside the container's root
(helpers/container/cp.py says how and why); this process handles the host
side as the plain user, and the two exchange a tar stream over a pipe."""

import os
import sys

from ..errors import SandboxError, UsageError


def register(sub):
    p = sub.add_parser(
        "cp", help="copy files between a container and the host",
        description="Copy between a container and the host: "
                    "CONTAINER:SRC_PATH DEST_PATH|-, or SRC_PATH|- "
                    "CONTAINER:DEST_PATH.  \"-\" is a tar stream on stdout "
                    "or stdin.  Works on running and stopped containers.")
    p.add_argument("-a", "--archive", action="store_true",
                   help="keep the source's uid/gid (into the container); "
                        "without it the files belong to the container's root")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="follow a symlink named as SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="accepted for Docker compatibility (no progress is shown)")
    p.add_argument("src", metavar="SRC_PATH")
    p.add_argument("dest", metavar="DEST_PATH")
    p.set_defaults(func=cmd_cp)

    p = sub.add_parser(
        "export", help="export a container's filesystem as a tar archive",
        description="Write the container's root filesystem (its image's "
                    "layers and its changes; not its volumes, --tmpfs or "
                    "/proc, /sys and /dev contents) as a tar archive, with "
                    "the owners it has inside, to -o FILE or stdout.  "
                    "`sandbox import` makes an image of it again.  Works on "
                    "running and stopped containers.")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    p.add_argument("container")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "diff", help="list the changes to a container's filesystem",
        description="List what the container changed in its root filesystem "
                    "since it was created: A (added), C (changed) or D "
                    "(deleted) and the path, sorted by path, as Docker does.")
    p.add_argument("container")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser(
        "commit", help="create a new image from a container's changes",
        description="A new image: the container's image with one more layer, "
                    "the container's changes (what `sandbox diff` lists), and "
                    "its command, environment, working directory, user and "
                    "labels.  Prints the new image's id.")
    p.add_argument("-a", "--author", help='author (e.g. "Jane <jane@example.com>")')
    p.add_argument("-m", "--message", help="commit message")
    p.add_argument("-c", "--change", action="append", default=[], metavar="INSTR",
                   help="a Dockerfile instruction for the new image's config "
                        "(CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR)")
    p.add_argument("-p", "--pause", default="true", metavar="BOOL",
                   help="pause a running container while its changes are read "
                        "(default true; needs the cgroup freezer, else it goes on)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.set_defaults(func=cmd_commit)


def split_arg(arg):
    """Docker's splitCpArg: "CONTAINER:PATH" -> (CONTAINER, PATH); an
    absolute path, "./x:y" or a path without ":" is local -> ("", arg)."""
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


def container_path(path):
    """Container paths are relative to its "/" (Docker's rule); the
    trailing "/" or "/." that carry meaning are kept."""
    return path if path.startswith("/") else "/" + path


def cmd_cp(args, paths):
    src_ctr, src = split_arg(args.src)
    dst_ctr, dest = split_arg(args.dest)
    # Option combinations first, before any side effect (house style 6).
    if src_ctr and dst_ctr:
        raise UsageError("copying between containers is not supported",
                         hint="copy to the host first, then into the other "
                              "container")
    if not src_ctr and not dst_ctr:
        raise UsageError("must specify at least one container source",
                         hint="sandbox cp CONTAINER:SRC_PATH DEST_PATH, or "
                              "sandbox cp SRC_PATH CONTAINER:DEST_PATH")
    if (src_ctr and not src) or (dst_ctr and not dest):
        raise UsageError("empty container path",
                         hint="give a path after the colon, e.g. %s:/" %
                              (src_ctr or dst_ctr))
    from ..container import state
    ref = src_ctr or dst_ctr
    cid = state.resolve(paths, ref)
    st = state.refresh(paths, cid)
    if src_ctr:
        return copy_out(paths, cid, st, ref, container_path(src), dest,
                        args.follow_link)
    return copy_in(paths, cid, st, ref, src, container_path(dest),
                   args.archive, args.follow_link)


def _not_in_container(ref):
    from ..container.cp import CpError
    return lambda path: CpError("Could not find the file %s in container %s"
                                % (path, ref))


def _not_on_host(path):
    from ..container.cp import CpError
    return CpError("lstat %s: no such file or directory" % path)


def _host_error(exc):
    from ..container.cp import CpError, _oserror_text
    if isinstance(exc, SandboxError):
        return exc
    if isinstance(exc, OSError):
        return CpError(_oserror_text(exc))
    return CpError("invalid tar archive: %s" % (exc or type(exc).__name__))


def _warn_devices(devices):
    if devices:
        from ..errors import warn
        warn("skipped %d device node(s) (e.g. %s): an unprivileged user "
             "cannot create them" % (len(devices), devices[0]))


def copy_out(paths, cid, st, ref, src, dest, follow_link):
    """CONTAINER:SRC -> a host path, or a tar stream on stdout ("-")."""
    import tarfile
    from ..container import cp
    from ..container.cp_extract import extract_archive
    data_r, data_w = os.pipe2(os.O_CLOEXEC)

    def work():
        with os.fdopen(data_w, "wb") as out:
            cp.write_archive(out, src, follow_link, _not_in_container(ref),
                             skip=cp.api_mounts())

    try:
        pid, err_r = cp.spawn(paths, cid, st, work, data_w)
    finally:
        os.close(data_w)
    mine = None
    try:
        with os.fdopen(data_r, "rb") as stream:
            if dest == "-":
                sys.stdout.flush()
                _pump(stream, sys.stdout.buffer)
            else:
                _warn_devices(extract_archive(stream, dest, "none",
                                              missing=_not_on_host))
    except BrokenPipeError:
        raise           # stdout closed (| head): cli.main ends quietly
    except (SandboxError, OSError, tarfile.TarError, EOFError) as exc:
        mine = exc      # the container side may know better: see below
    theirs = cp.collect(pid, err_r)
    # The container side's error first: when it fails (no such file), this
    # side only sees a short stream.
    if theirs is not None:
        raise theirs
    if mine is not None:
        raise _host_error(mine)
    return 0


def copy_in(paths, cid, st, ref, src, dest, archive, follow_link):
    """A host path, or a tar stream on stdin ("-") -> CONTAINER:DEST."""
    from ..container import cp
    raw = src == "-"
    if not raw:
        # Before anything happens in the container (Docker checks first).
        cp.source_stat(src, follow_link, _not_on_host)

    def produce(out):
        if raw:
            from ..image.unpack import decompressed
            _pump(decompressed(sys.stdin.buffer), out)
        else:
            cp.write_archive(out, src, follow_link, _not_on_host)
    return _extract_in(paths, cid, st, ref, dest, "keep" if archive else "root", raw, produce)


def copy_produced_in(paths, cid, st, ref, produce, dest):
    """The tar that ``produce(out)`` writes (its owners kept: `build`'s
    COPY) into the existing directory ``dest`` of the container."""
    return _extract_in(paths, cid, st, ref, dest, "keep", True, produce)


def _pump(stream, out):
    """``stream`` to the fd of ``out`` as it comes (read1: what is there,
    not a full chunk, where the stream has it)."""
    from ..container import cp
    from ..fsutil import write_all
    read = getattr(stream, "read1", stream.read)
    while True:
        chunk = read(cp.CHUNK)
        if not chunk:
            break
        write_all(out.fileno(), chunk)


def _extract_in(paths, cid, st, ref, dest, owners, raw, produce):
    """``produce(out)`` writes a tar that W extracts at ``dest`` in the
    container (cp_extract: hostile-archive rules, in the container's root)."""
    import tarfile
    from ..container import cp
    # Imported now: W, which extracts, can import nothing in the container.
    from ..container.cp_extract import extract_archive
    from ..fsutil import read_json
    from ..userns import current_id_map
    spec = read_json(os.path.join(paths.container(cid), "config.json"),
                     default={}) or {}
    if (spec.get("root") or {}).get("readonly"):
        raise cp.CpError("container rootfs is marked read-only",
                         hint="the container was made with --read-only")
    idmap = current_id_map()
    data_r, data_w = os.pipe2(os.O_CLOEXEC)

    def work():
        with os.fdopen(data_r, "rb") as stream:
            _warn_devices(extract_archive(stream, dest, owners, idmap, raw=raw,
                                          missing=_not_in_container(ref)))

    try:
        pid, err_r = cp.spawn(paths, cid, st, work, data_r)
    finally:
        os.close(data_r)
    mine = None
    try:
        with os.fdopen(data_w, "wb") as out:
            produce(out)
    except BrokenPipeError:
        pass            # the container side stopped reading: it says why
    except (SandboxError, OSError, tarfile.TarError, EOFError) as exc:
        mine = exc
    theirs = cp.collect(pid, err_r)
    # This side's error first: the container side then saw a short stream.
    if mine is not None:
        raise _host_error(mine)
    if theirs is not None:
        raise theirs
    return 0


def cmd_export(args, paths):
    from ..container import state
    from . import write_output
    cid = state.resolve(paths, args.container)
    write_output(args.output, lambda out: export(paths, cid, out))
    return 0


def export(paths, cid, out):
    """The container's root filesystem as a tar stream on the binary file
    ``out``: names relative to its "/" ("bin/sh"), no entry for "/" itself,
    read by W in a fresh read-only mount of it (cp.spawn_in_rootfs)."""
    from ..container import cp, state
    st = state.refresh(paths, cid)
    data_r, data_w = os.pipe2(os.O_CLOEXEC)

    def work():
        with os.fdopen(data_w, "wb") as stream:
            cp.write_tree(stream, "/")

    try:
        pid, err_r = cp.spawn_in_rootfs(paths, cid, st, work, data_w)
    finally:
        os.close(data_w)
    mine = None
    try:
        with os.fdopen(data_r, "rb") as stream:
            _pump(stream, out)
    except BrokenPipeError:
        raise           # stdout closed (| head): cli.main ends quietly
    except OSError as exc:
        mine = exc
    theirs = cp.collect(pid, err_r)
    if theirs is not None:
        raise theirs
    if mine is not None:
        raise mine      # cli.os_error: a full disk, a file it may not write


def cmd_diff(args, paths):
    from ..container import changes, state
    from ..image.store import Store
    from ..userns import run_in_userns
    cid = state.resolve(paths, args.container)
    st = state.refresh(paths, cid)
    layers = Store(paths).layer_dirs(st["Image"])
    found = run_in_userns(changes.changes, st["Driver"], paths.container(cid), layers)
    sys.stdout.write("".join("%s %s\n" % kp for kp in found))
    return 0


def cmd_commit(args, paths):
    from ..container import commit, state
    from .registry import parse_bool
    try:
        pause = parse_bool(args.pause)
    except ValueError:
        raise UsageError("invalid --pause value %r" % args.pause,
                         hint="--pause=true or --pause=false") from None
    # A bad name or change fails before any work.
    if args.repository:
        from ..image.reference import parse
        parse(args.repository)
    from ..image.archive import apply_changes
    apply_changes({}, args.change)
    cid = state.resolve(paths, args.container)
    st = state.refresh(paths, cid)
    frozen = None
    if pause and st.get("Status") == "running" and st.get("Cgroup"):
        from .. import cgroups
        frozen = cgroups.Cgroup.from_dict(st["Cgroup"])
        frozen.freeze()
    try:
        image_id = commit.commit(paths, cid, st, args.repository, args.author,
                                 args.message, args.change)
    finally:
        if frozen is not None:
            frozen.thaw()
    print(image_id)
    return 0
