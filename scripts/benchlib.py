"""What scripts/bench-start, bench-exec and bench-net share   (run as root)

Each bench measures as the unprivileged test user, in a temporary directory
of its own (under $TMPDIR, default /var/tmp) that root removes at the end:

  main(opts, bench, why_root)   root check, the user, the directory, cleanup
  Session(opts, user, tmp)      the user's environment there: HOME,
                                XDG_RUNTIME_DIR, a fresh sandbox store
                                (SANDBOX_ROOT/SANDBOX_RUNROOT), run(),
                                sandbox_cli(), podman(), remove()
  busybox_archive(opts, tmp)    busybox.tar from scripts/make-test-images
  drive(session, tools, ...)    the timing driver: posix_spawn, round robin

Messages start with the script's name (bench-start: ...).
"""

import argparse
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.environ.get("SANDBOX_VENV", "/opt/sandbox/venv")
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
PROG = os.path.basename(sys.argv[0])

# The timing driver, run as the test user by /usr/bin/python3 -I -S.
# Reads the plan (JSON) from argv[1], writes the results (JSON) to argv[2],
# progress to stderr.
DRIVER = r'''
import json, os, sys, time

plan = json.load(open(sys.argv[1]))
tools = plan["tools"]          # [{"name", "argv"}]
env = plan["env"]
errdir = plan["errdir"]
devnull = os.open("/dev/null", os.O_RDWR)
samples = {t["name"]: [] for t in tools}
failed = {}

def once(tool):
    """Run the tool once; seconds, or None when it failed (recorded)."""
    errfile = os.path.join(errdir, tool["name"] + ".stderr")
    err = os.open(errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
               (os.POSIX_SPAWN_DUP2, err, 2)]
    argv = tool["argv"]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter()
    os.close(err)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        with open(errfile, errors="replace") as f:
            failed[tool["name"]] = {"exit": code, "stderr": f.read()[-4000:]}
        return None
    return t1 - t0

def rounds(count, record, label):
    for i in range(count):
        live = [t for t in tools if t["name"] not in failed]
        if not live:
            return
        k = i % len(live)
        for tool in live[k:] + live[:k]:
            secs = once(tool)
            if secs is not None and record:
                samples[tool["name"]].append(secs)
        if (record and (i + 1) % 10 == 0) or i + 1 == count:
            print("%s: %s %d/%d" % (plan["prog"], label, i + 1, count), file=sys.stderr,
                  flush=True)

rounds(plan["warmup"], False, "warm-up")
rounds(plan["n"], True, "measured")
json.dump({"samples": samples, "failed": failed}, open(sys.argv[2], "w"))
'''


def log(msg):
    print("%s: %s" % (PROG, msg), flush=True)


def die(msg):
    print("%s: %s" % (PROG, msg), file=sys.stderr, flush=True)
    sys.exit(1)


class User:
    def __init__(self, name):
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, pw.pw_uid, pw.pw_gid


def as_user(user, env, argv, **kw):
    """argv run as the user with exactly env (setpriv drops ids and groups)."""
    wrapped = (["setpriv", "--reuid=%d" % user.uid, "--regid=%d" % user.gid,
                "--init-groups", "--reset-env", "--", "/usr/bin/env", "-i"]
               + ["%s=%s" % kv for kv in sorted(env.items())] + list(argv))
    return subprocess.run(wrapped, **kw)


def user_dir(path, user, mode=0o700):
    os.makedirs(path, exist_ok=True)
    os.chown(path, user.uid, user.gid)
    os.chmod(path, mode)
    return path


def check(result, what):
    if result.returncode != 0:
        out = (result.stdout or "") + (result.stderr or "")
        die("%s failed (exit %d):\n%s" % (what, result.returncode, out.strip()))
    return result


def copy_checkout(dest):
    """Tracked files (minus deleted ones) and untracked, non-ignored files."""
    os.makedirs(dest)
    if subprocess.run(["git", "-C", HERE, "rev-parse", "--is-inside-work-tree"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
        names = subprocess.run(["git", "-C", HERE, "ls-files", "-z", "--cached", "--others",
                                "--exclude-standard"], check=True,
                               stdout=subprocess.PIPE).stdout.split(b"\0")
        names = [n for n in names if n and os.path.lexists(os.path.join(HERE.encode(), n))]
        pack = subprocess.Popen(["tar", "--null", "--no-recursion", "-T", "-", "-cf", "-"],
                                cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        unpack = subprocess.Popen(["tar", "-xf", "-", "-C", dest], stdin=pack.stdout)
        pack.stdout.close()
        pack.stdin.write(b"\0".join(names) + b"\0")
        pack.stdin.close()
        if pack.wait() != 0 or unpack.wait() != 0:
            die("copying the checkout to %s failed" % dest)
    else:
        shutil.copytree(HERE, dest, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "dist", "build", "__pycache__"))
    # The interpreter ./sandbox runs with (its #! line), so that the .pyc
    # files match.
    py = "/usr/bin/python3"
    subprocess.run([py, "-m", "compileall", "-q", "-j", "0", dest],
                   stdout=subprocess.DEVNULL, check=False)
    subprocess.run(["chmod", "-R", "a+rX", dest], check=True)


def stats(samples):
    ms = sorted(s * 1000 for s in samples)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return {"median_ms": statistics.median(ms), "min_ms": ms[0], "p90_ms": p90,
            "max_ms": ms[-1], "mean_ms": statistics.fmean(ms),
            "stdev_ms": statistics.stdev(ms) if len(ms) > 1 else 0.0, "runs": len(ms)}


def timings(tools, result):
    """{name: stats(...) + argv + samples_ms} of the tools of a drive()
    result that did not fail."""
    figures = {}
    for tool in tools:
        name = tool["name"]
        if name in result["failed"]:
            continue
        figures[name] = dict(stats(result["samples"][name]), argv=tool["argv"],
                             samples_ms=[round(s * 1000, 3) for s in result["samples"][name]])
    return figures


def print_timings(tools, figures, label, ratio_head, ours_of):
    """The table of timings(): one row a tool, its last column the median
    of ours_of(name) (a tool name, or None) over the tool's."""
    print("%-14s %9s %8s %8s %8s %13s" % (label, "median ms", "min", "p90", "max", ratio_head))
    for tool in tools:
        name = tool["name"]
        if name not in figures:
            print("%-14s %s" % (name, "FAILED"))
            continue
        fig = figures[name]
        ours = ours_of(name)
        ratio = ("%.2f" % (figures[ours]["median_ms"] / fig["median_ms"])
                 if ours in figures else "-")
        print("%-14s %9.1f %8.1f %8.1f %8.1f %13s"
              % (name, fig["median_ms"], fig["min_ms"], fig["p90_ms"], fig["max_ms"], ratio))


def kill_user_leftovers(user, tmp):
    """SIGKILL the test user's processes that belong to this bench: podman's
    pause process (catatonit) and anything whose environment points into
    tmp.  Only by pid, only this bench's."""
    needle = tmp.encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat("/proc/" + pid).st_uid != user.uid:
                continue
            with open("/proc/%s/environ" % pid, "rb") as f:
                environ = f.read()
            if needle in environ:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def kill_if_same(pid, start):
    """SIGKILL pid if it is still the process that started at ``start``."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        if int(stat[stat.rindex(")") + 2:].split()[19]) == start:
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def options(n, warmup, images=True):
    """The options every bench takes (-n and --warmup with these defaults;
    --images for those that use busybox.tar); the caller adds its own."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("-h", "--help", action="store_true")
    ap.add_argument("-n", type=int, default=n)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--bin")
    if images:
        ap.add_argument("--images")
    ap.add_argument("--json")
    ap.add_argument("--user", default=os.environ.get("SANDBOX_TEST_USER", "sandbox-test"))
    ap.add_argument("--podman-driver", default="overlay")
    ap.add_argument("--keep", action="store_true")
    return ap


def main(opts, bench, why_root="I drop to the test user for every measured command",
         need_podman=False):
    """Checks, then bench(opts, user, tmp, cleanups) in a fresh temporary
    directory.  cleanups: (what, fn) steps run at the end, every `rm -f`
    first, then those named "kill ..."; then whatever of the user's
    processes still points into the directory is killed and it is removed."""
    if os.geteuid() != 0:
        die("run me as root (%s)" % why_root)
    if opts.bin and not os.path.isfile(opts.bin):
        die("--bin %s: no such file" % opts.bin)
    if need_podman and not shutil.which("podman", path=CLEAN_PATH):
        die("podman is not installed: nothing to compare with")
    try:
        user = User(opts.user)
    except KeyError:
        log("user %s missing: scripts/setup-host --user %s" % (opts.user, opts.user))
        subprocess.run([os.path.join(HERE, "scripts", "setup-host"), "--user", opts.user],
                       check=True)
        user = User(opts.user)

    base = os.environ.get("TMPDIR", "/var/tmp")
    tmp = tempfile.mkdtemp(prefix=PROG + ".", dir=base)
    os.chmod(tmp, 0o755)
    cleanups = []
    try:
        return bench(opts, user, tmp, cleanups)
    finally:
        steps = [s for s in cleanups if not s[0].startswith("kill ")]
        steps += [s for s in cleanups if s[0].startswith("kill ")]
        for what, fn in steps:
            try:
                fn()
            except Exception as exc:      # noqa: BLE001 - go on cleaning
                log("cleanup: %s: %s" % (what, exc))
        kill_user_leftovers(user, tmp)
        if opts.keep:
            log("kept %s" % tmp)
        else:
            # podman's storage holds files owned by subordinate ids: root
            # removes it.  --one-file-system: never follow a leaked mount.
            subprocess.run(["rm", "-rf", "--one-file-system", tmp])
            if os.path.exists(tmp):
                log("could not remove all of %s" % tmp)


def busybox_archive(opts, tmp):
    """busybox.tar (docker-archive) copied into tmp, readable by all."""
    archive = os.path.join(tmp, "busybox.tar")
    if opts.images:
        src = os.path.join(opts.images, "busybox.tar")
        if not os.path.isfile(src):
            die("%s: no busybox.tar there" % opts.images)
        shutil.copyfile(src, archive)
    else:
        images = os.path.join(tmp, "images")
        subprocess.run([os.path.join(HERE, "scripts", "make-test-images"), images],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(os.path.join(images, "busybox.tar"), archive)
        shutil.rmtree(images)
    os.chmod(archive, 0o644)
    return archive


class Session:
    """The test user's environment in tmp, and the tools run in it."""

    def __init__(self, opts, user, tmp):
        self.opts, self.user, self.tmp = opts, user, tmp
        self.home = user_dir(os.path.join(tmp, "home"), user)
        self.xdg = user_dir(os.path.join(tmp, "xdg"), user)
        self.errdir = user_dir(os.path.join(tmp, "err"), user)
        self.sandbox_root = user_dir(os.path.join(tmp, "sandbox-root"), user)
        self.sandbox_run = user_dir(os.path.join(tmp, "sandbox-run"), user)
        self.env = {
            "HOME": self.home, "USER": user.name, "LOGNAME": user.name, "PATH": CLEAN_PATH,
            "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": self.xdg,
            "SANDBOX_ROOT": self.sandbox_root, "SANDBOX_RUNROOT": self.sandbox_run,
            "SANDBOX_VENV": VENV,       # (helpers/deps.py)
        }
        self.notes = {}

    def run(self, argv, what, check_exit=True):
        """argv as the user in tmp; its output captured; exits on failure."""
        result = as_user(self.user, self.env, argv, cwd=self.tmp, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return check(result, what) if check_exit else result

    def remove(self, argv, what):
        """A cleanup step: its failure is reported, not fatal."""
        def step():
            result = self.run(argv, what, check_exit=False)
            if result.returncode != 0:
                log("%s failed (exit %d): %s" % (what, result.returncode, result.stderr.strip()))
        return (what, step)

    def sandbox_cli(self):
        """The sandbox executable the user runs: --bin copied into tmp, or
        this checkout copied and byte-compiled there (the user could not
        write __pycache__ and would recompile on every run)."""
        if self.opts.bin:
            cli = os.path.join(self.tmp, "bin", "sandbox")
            os.makedirs(os.path.dirname(cli))
            shutil.copyfile(self.opts.bin, cli)
            os.chmod(os.path.dirname(cli), 0o755)
            os.chmod(cli, 0o755)
            self.notes["sandbox"] = "binary " + os.path.abspath(self.opts.bin)
            return cli
        log("copying and byte-compiling the checkout")
        copy_checkout(os.path.join(self.tmp, "src"))
        rev = subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.notes["sandbox"] = "checkout %s (%s)" % (HERE, rev.stdout.strip() or "no git")
        return os.path.join(self.tmp, "src", "sandbox")

    def podman(self):
        """(podman argv with a fresh --root/--runroot, ["--runtime", "runc"]
        or []), or None when podman is not installed.  runc: this host's
        hybrid cgroup layout makes crun refuse."""
        podman = shutil.which("podman", path=CLEAN_PATH)
        if not podman:
            return None
        pod = user_dir(os.path.join(self.tmp, "podman"), self.user)
        pargv = [podman, "--root", os.path.join(pod, "root"), "--runroot",
                 os.path.join(pod, "run"), "--storage-driver", self.opts.podman_driver]
        info = self.run(pargv + ["info", "--format",
                                 "{{.Version.Version}} storage {{.Store.GraphDriverName}}, "
                                 "network backend {{.Host.NetworkBackend}}, "
                                 "rootless net {{.Host.Slirp4NetNS.Executable}}"], "podman info")
        runtime = ["--runtime", "runc"] if shutil.which("runc", path=CLEAN_PATH) else []
        self.notes["podman"] = "podman %s, runtime %s" % (info.stdout.strip(),
                                                          "runc" if runtime else "default")
        return pargv, runtime


def drive(session, tools, n, warmup, what="runs"):
    """Time every tool's argv n times (after warmup runs), round robin, as
    the user; {"samples": {name: [seconds]}, "failed": {name: {...}}}."""
    tmp = session.tmp
    driver = os.path.join(tmp, "driver.py")
    plan_file = os.path.join(tmp, "plan.json")
    result_file = os.path.join(session.errdir, "result.json")
    with open(driver, "w") as f:
        f.write(DRIVER)
    with open(plan_file, "w") as f:
        json.dump({"tools": tools, "env": session.env, "errdir": session.errdir,
                   "n": n, "warmup": warmup, "prog": PROG}, f)
    os.chmod(driver, 0o644)
    os.chmod(plan_file, 0o644)
    for name, note in session.notes.items():
        log("%s: %s" % (name, note))
    log("%d warm-up + %d measured %s of %s, round robin, as %s"
        % (warmup, n, what, ", ".join(t["name"] for t in tools), session.user.name))
    started = time.monotonic()
    result = as_user(session.user, session.env,
                     ["/usr/bin/python3", "-I", "-S", driver, plan_file, result_file],
                     cwd=tmp, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        die("the timing driver failed (exit %d)" % result.returncode)
    with open(result_file) as f:
        result = json.load(f)
    log("took %.0f s" % (time.monotonic() - started))
    return result


def print_failures(failed):
    for name, failure in failed.items():
        print("\n%s FAILED (exit %d); its stderr:\n%s"
              % (name, failure["exit"], failure["stderr"].rstrip() or "(empty)"), file=sys.stderr)
