/*
 * sandbox-init's "start" mode: C, the process between the CLI and the
 * container, as native code (runtime.py, Starter with ``native``; the
 * Python C, _child_c, stays for the rest).  P (the CLI of a foreground
 * `sandbox run`, before it writes the container's record, or a detached
 * container's supervisor) posix_spawns it as
 *   argv ["sandbox-init", "start", OPTIONS], an empty environment, in a
 *   process group of its own, with
 *   fd 3 the launch pipe (P's messages), fd 4 the error pipe to P (G gets
 *   it too), fd 5 the "go" pipe (G's; kept for an --rm container's end),
 *   fd 6 this program, fd 7 the pid pipe to P, fd 8 the status pipe to P,
 *   fd 9 the user's shared user namespace, fd 10 the network pipe to P
 *   (OPTIONS "n"), fd 11 the pty slave (OPTIONS "t") or fds 11-13 G's
 *   stdin, stdout, stderr (OPTIONS "0", "1", "2" for those given).
 * OPTIONS also has "w": make the route watch (runtime._route_watch), and
 * "r": fd 14 is the native monitor, whose reap mode C becomes once G runs
 * (a detached container's C, started by its supervisor), and "s": fd 8 is
 * given (the foreground run's status pipe).
 *
 * It joins the user namespace and, with "n", makes the network namespace
 * (then writes "n" and the number of its route watch on fd 10, for P to
 * take), then reads messages from fd 3, each a letter, a decimal length,
 * ":" and that many bytes of NUL-ended words:
 *   R dir target data hint   a mount namespace of its own and the root
 *                            filesystem (kernel overlay, mounted from dir
 *                            with data; rootfs.overlay_mount_args); "m" on
 *                            fd 7 once mounted
 *   L unshare-flags njoins (flag path)... pid rootfs cdir autoremove grave
 *     cgroup stdin PLAN...   the rest: joins, unshare, the PID namespace
 *                            (pid: "new", a path to join, or "" for none),
 *                            then G: sandbox-init's setup mode (setup.c)
 *                            with PLAN (runtime._native_plan, computed by
 *                            P) on its fd 3
 * EOF before L: P gave up; exit 125.  Once G is started its pid goes to fd
 * 7; when it ends: the OOM marker, the record awaited (--rm), the root
 * unmounted and an --rm container's directory moved to its grave, the exit
 * code on fd 8, and the grave removed (runtime._teardown_after_report).
 * With "r", C execs the monitor's reap mode instead, once G's pid is out.
 * Failures go to fd 4 as "125" NUL message NUL hint.  When P dies (its
 * PR_SET_PDEATHSIG is SIGTERM here), G is killed and the teardown follows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "native.h"

enum { LAUNCH = 3, ERR = 4, GO = 5, SELF = 6, PID = 7, STATUS = 8, USERNS = 9,
       NET = 10, STDIO = 11, REAPER = 14 };

static volatile sig_atomic_t parent_gone;
static volatile pid_t gpid;

static void on_parent_gone(int sig)
{
    (void)sig;
    parent_gone = 1;
    if (gpid > 0)
        kill(gpid, SIGKILL);
}

/* The message for P (runtime._decode_failure) */
static void report(const char *what, int err, const char *hint)
{
    char text[4096 + 256];
    const char *pieces[] = {what, err ? ": " : "", err ? strerror(err) : ""};
    join_text(text, sizeof text, pieces, 3);
    const char *parts[] = {"125", text, hint ? hint : ""};
    write_parts(ERR, parts, 3);
}

/* Into the namespace at path: 0, or an errno. */
static int join(const char *path, int kind)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
    if (fd < 0 || setns(fd, kind) < 0)
        err = errno;
    if (fd >= 0)
        close(fd);
    return err;
}

/* One message from P: its letter (0 at EOF) and its words. */
struct message {
    char letter;
    char *cur, *end;
};

static int read_exact(int fd, char *buf, size_t n)
{
    while (n) {
        ssize_t r = read(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

static struct message next_message(void)
{
    struct message m = {0, NULL, NULL};
    char head[32];
    size_t i = 0;
    while (i < sizeof head - 1) {
        if (read_exact(LAUNCH, head + i, 1) < 0)
            return m;
        if (head[i] == ':')
            break;
        i++;
    }
    head[i] = '\0';
    char *digits_end;
    long len = strtol(head + 1, &digits_end, 10);
    if (i < 2 || i == sizeof head - 1 || *digits_end || head[1] < '0' || head[1] > '9' ||
            len > (64L << 20))
        return m;
    char *buf = malloc((size_t)len + 1);
    if (!buf || read_exact(LAUNCH, buf, (size_t)len) < 0)
        return m;
    buf[len] = '\0';
    m.letter = head[0];
    m.cur = buf;
    m.end = buf + len;
    return m;
}

static const char *word(struct message *m)
{
    if (m->cur >= m->end)
        return "";
    char *w = m->cur;
    m->cur += strlen(w) + 1;
    return w;
}

/* The route watch's fd, or -1: P takes a copy before it sends the Launch,
 * ours goes then. */
static int watch = -1;

static void route_watch(void)
{
    char reply[32] = "n";
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd >= 0) {
        struct sockaddr_nl addr;
        memset(&addr, 0, sizeof addr);
        addr.nl_family = AF_NETLINK;
        addr.nl_groups = 0x40 | 0x400;      /* RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE */
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
            snprintf_int(reply + 1, sizeof reply - 1, fd);
            watch = fd;
        } else {
            close(fd);
        }
    }
    write_all(NET, reply, strlen(reply));
}

static void devnull_onto(int fd)
{
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) {
        dup2(nul, fd);
        close(nul);
    }
}

/* G: the setup mode of this program, in a child, with the plan on fd 3. */
static pid_t spawn_g(const char *options, int stdin_open, int plan)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (strchr(options, 't')) {
        for (int fd = 0; fd < 3; fd++)
            dup2(STDIO, fd);
    } else {
        for (int fd = 0; fd < 3; fd++)
            if (strchr(options, '0' + fd))
                dup2(STDIO + fd, fd);
        if (!stdin_open && !strchr(options, '0'))
            devnull_onto(0);
    }
    dup2(plan, 3);
    for (int fd = ERR; fd <= SELF; fd++)
        fcntl(fd, F_SETFD, 0);
    syscall(SYS_close_range, 7U, ~0U, 0U);
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* No exec: we are sandbox-init already, and hold nothing G may not
     * (its plan, the root's paths). */
    _exit(setup_main());
}

static int wait_for(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 125;
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* runtime._note_oom */
static void note_oom(const char *cgroup, const char *cdir)
{
    if (!*cgroup)
        return;
    char path[4096 + 32];
    size_t l = strlen(cgroup);
    if (l + 20 >= sizeof path)
        return;
    memcpy(path, cgroup, l);
    strcpy(path + l, "/memory.events");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t len;
    char *text = read_all_fd(fd, &len);
    close(fd);
    char *line = text ? strstr(text, "oom_kill ") : NULL;
    if (line && (line == text || line[-1] == '\n') && strtol(line + 9, NULL, 10) > 0) {
        l = strlen(cdir);
        if (l + 20 < sizeof path) {
            memcpy(path, cdir, l);
            strcpy(path + l, "/oom-killed");
            fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd >= 0)
                close(fd);
        }
    }
    free(text);
}

/* runtime._become_reaper: the native monitor's reap mode (fd 14) takes
 * over the wait, the OOM marker and the unmount; an --rm container's
 * directory is the supervisor's to remove.  Returns only if the exec
 * failed. */
static void become_reaper(pid_t pid, const char *rootfs, const char *cgroup,
                          const char *cdir, int autoremove, const char *grave)
{
    char number[24], marker[4096 + 16];
    const char *pieces[] = {cdir, "/oom-killed"};
    snprintf_int(number, sizeof number, pid);
    join_text(marker, sizeof marker, pieces, 2);
    char *argv[] = {"sandbox-monitor", "reap", number, (char *)rootfs, (char *)cgroup,
                    marker, autoremove ? (char *)cdir : "", autoremove ? (char *)grave : "",
                    NULL};
    char *envp[] = {NULL};
    syscall(SYS_execveat, REAPER, "", argv, envp, AT_EMPTY_PATH);
}

/* runtime._await_record: P is done with an --rm container's directory. */
static void await_record(int autoremove)
{
    char buf[64];
    while (autoremove) {
        ssize_t n = read(GO, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    close(GO);
}

int start_main(const char *options)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_parent_gone;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        parent_gone = 1;
    prctl(PR_SET_NAME, "sandbox-start");
    for (int fd = LAUNCH; fd <= REAPER; fd++)
        if (fd != SELF)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (setns(USERNS, CLONE_NEWUSER) < 0) {
        report("cannot join the user namespace", errno, NULL);
        return 125;
    }
    close(USERNS);
    if (strchr(options, 'n')) {
        if (unshare(CLONE_NEWNET) < 0) {
            report("cannot make the network namespace", errno, NULL);
            return 125;
        }
        if (strchr(options, 'w'))
            route_watch();
        else
            write_all(NET, "n", 1);
        close(NET);
    }
    struct message m = next_message();
    int root = 0;
    if (m.letter == 'R') {
        const char *dir = word(&m), *target = word(&m), *data = word(&m);
        const char *hint = word(&m);
        if (unshare(CLONE_NEWNS) < 0 ||
                mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            report("cannot make the mount namespace", errno, NULL);
            return 125;
        }
        if (chdir(dir) < 0 || mount("overlay", target, "overlay", 0, data) < 0) {
            report("cannot mount overlayfs", errno, hint);
            return 125;
        }
        chdir("/");
        write_all(PID, "m", 1);
        root = 1;
        m = next_message();
    }
    if (watch >= 0)
        close(watch);
    if (m.letter != 'L' || !root)
        return 125;             /* P gave up (its error is its own to report) */
    int flags = (int)strtol(word(&m), NULL, 10);
    long joins = strtol(word(&m), NULL, 10);
    const char *failure = NULL;
    int err = 0;
    for (long i = 0; i < joins && !failure; i++) {
        int kind = (int)strtol(word(&m), NULL, 10);
        const char *path = word(&m);
        if ((err = join(path, kind)) != 0)
            failure = path;
    }
    const char *pid_ns = word(&m), *rootfs = word(&m), *cdir = word(&m);
    int autoremove = *word(&m) != '\0';
    const char *grave = word(&m), *cgroup = word(&m);
    int stdin_open = *word(&m) != '\0';
    if (!failure && flags && unshare(flags) < 0) {
        failure = "unshare";
        err = errno;
    }
    if (!failure && strcmp(pid_ns, "new") == 0) {
        if (unshare(CLONE_NEWPID) < 0) {
            failure = "unshare";
            err = errno;
        }
    } else if (!failure && *pid_ns && (err = join(pid_ns, CLONE_NEWPID)) != 0) {
        failure = pid_ns;
    }
    int plan = -1;
    if (!failure) {
        plan = memfd_create("sandbox-plan", MFD_CLOEXEC);
        if (plan < 0 || write_all(plan, m.cur, (size_t)(m.end - m.cur)) < 0 ||
                lseek(plan, 0, SEEK_SET) < 0) {
            failure = "memfd";
            err = errno;
        }
    }
    int code = 125;
    if (failure) {
        report(failure, err, NULL);
        close(PID);
    } else {
        pid_t pid = spawn_g(options, stdin_open, plan);
        gpid = pid > 0 ? pid : 0;
        if (parent_gone && gpid)
            kill(gpid, SIGKILL);
        close(plan);
        if (pid < 0)
            report("cannot fork", errno, NULL);
        if (!autoremove)
            close(GO);
        for (int fd = STDIO; fd < STDIO + 3; fd++)
            close(fd);
        char number[24];
        snprintf_int(number, sizeof number, gpid);
        if (gpid)
            write_all(PID, number, strlen(number));
        close(PID);
        /* Only G keeps the error pipe: EOF tells P the exec happened. */
        close(ERR);
        /* Nor our copies of the caller's stdio: a pipe from `sandbox run`
         * ends when it does, not when our teardown does. */
        for (int fd = 0; fd < 3; fd++)
            devnull_onto(fd);
        if (gpid && strchr(options, 'r'))
            become_reaper(gpid, rootfs, cgroup, cdir, autoremove, grave);
        if (gpid) {
            code = wait_for(gpid);
            note_oom(cgroup, cdir);
        }
    }
    await_record(autoremove);
    umount2(rootfs, MNT_DETACH);
    int buried = autoremove && bury(cdir, grave, 0755);
    if (autoremove && !buried)
        remove_tree(cdir);          /* in place, before the report */
    prctl(PR_SET_PDEATHSIG, 0);
    char number[24];
    snprintf_int(number, sizeof number, code);
    if (strchr(options, 's')) {
        write_all(STATUS, number, strlen(number));
        close(STATUS);
    }
    if (buried)
        remove_tree(grave);
    return code;
}
