/*
 * sandbox-monitor: the idle part of a detached container's supervisor,
 * small enough to cost what conmon costs podman (issue 3's memory goal).
 *
 * The Python supervisor starts the container, then replaces itself (same
 * pid, same children, same open fds) with
 *
 *   sandbox-monitor supervise LOG LOGMAX CPID LISTENFD STDINFD OUTFD ERRFD
 *                             TTY NOTIFYFD DIRECT CMD...
 *
 * which, as helpers/container/monitor.py and attach.py do in Python:
 *   - copies the container's output (OUTFD, ERRFD; with TTY=1 the pty
 *     master is OUTFD and STDINFD) to Docker's json-file LOG, rotated per
 *     LOGMAX ("MAXSIZE:MAXFILES", --log-opt max-size and max-file;
 *     MAXSIZE 0: never; "-": no log, --log-driver none), each line with
 *     the "attrs" of $SANDBOX_LOG_ATTRS (a JSON object) if set, and to the
 *     clients of the attach socket LISTENFD (frames: kind "1"/"2"/"x",
 *     big-endian u32 length, payload; with TTY=1 each client first gets a
 *     "t" frame with the master, for the window size);
 *   - writes the clients' bytes to STDINFD; a client's EOF closes it when
 *     it is a pipe (-i without -t);
 *   - answers the container's bind(2) calls (NOTIFYFD: a seccomp listener,
 *     or -1): a TCP socket bound to a published container port in DIRECT
 *     ("CTRPORT:HOSTIP:HOSTPORT,...", HOSTIP empty for any) is swapped for
 *     a socket of the host's network namespace bound to the host port, so
 *     that clients reach the server with no relay in between (the kernel's
 *     own loopback speed) and it sees their real addresses; any other bind
 *     goes ahead untouched (helpers/network/__init__.py, decide_direct:
 *     only when the user asks for it, as such a socket is the host's and
 *     a process holding it can make it a client of the host's own
 *     services; a socket filter that would stop that needs privilege in
 *     the host's network namespace);
 *   - once every output is at EOF, waits for C (CPID) and execs CMD...
 *     with two more arguments, the exit code and the attached clients'
 *     fds ("5,7"; they stay open): Python again, which records the exit,
 *     tells the clients, cleans up and restarts per policy
 *     (monitor.resume).
 *
 * C, the parent of the container's PID 1, likewise replaces itself with
 *
 *   sandbox-monitor reap GPID ROOTFS CGROUPDIR MARKER RMDIR GRAVE
 *
 * which waits for PID 1, leaves MARKER when the container's cgroup saw an
 * OOM kill (it still exists while C is in the reaper leaf beside it, in
 * the same scope: helpers/cgroups.py), detaches the root file
 * system (ending a fuse-overlayfs daemon) and exits with PID 1's status
 * (128+N for signal N).  Should the supervisor die first (SIGTERM, the
 * parent-death signal C has: runtime.PARENT_GONE), it kills PID 1 and, for
 * an --rm container (RMDIR: its directory, else empty), removes what the
 * supervisor would have: the directory, renamed out of the store to GRAVE
 * first (runtime._grave: `store gc` finishes a deletion cut short).
 *
 * A container with a health check gets, beside its supervisor (a child of
 * it, which dies with it),
 *
 *   sandbox-monitor health DELAYMS PROBE...
 *
 * which sleeps DELAYMS, runs PROBE (`sandbox __health ...`: one check,
 * recorded in the container's health.json), reads from its stdout the
 * milliseconds until the next one, and so on; no number ends it
 * (helpers/container/health.py).
 *
 * The keeper of the user-defined networks' namespace is this program too,
 * in its dns mode (below, before main).
 *
 * The arguments are a private interface between this file and monitor.py:
 * the executable's name carries its version (sandbox-monitor.N).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "native.h"

#define MAX_PARTIAL (16 * 1024)   /* Docker's json-file splits longer lines */
#define MAX_CLIENTS 64
#define CHUNK 65536

struct buf { char *p; size_t len, cap; };

static void die(const char *what)
{
    fprintf(stderr, "sandbox-monitor: %s: %s\n", what, strerror(errno));
    exit(125);
}

static void buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            die("out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* ---- JSON, as Python's json.dumps(ensure_ascii=True) of
 *      bytes.decode("utf-8", "replace") ---------------------------------- */

static void put_u(struct buf *out, unsigned cp)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 'u', hex[(cp >> 12) & 15], hex[(cp >> 8) & 15],
                   hex[(cp >> 4) & 15], hex[cp & 15]};
    buf_add(out, esc, 6);
}

static void put_cp(struct buf *out, unsigned cp)
{
    switch (cp) {
    case '"': buf_str(out, "\\\""); return;
    case '\\': buf_str(out, "\\\\"); return;
    case '\n': buf_str(out, "\\n"); return;
    case '\r': buf_str(out, "\\r"); return;
    case '\t': buf_str(out, "\\t"); return;
    case '\b': buf_str(out, "\\b"); return;
    case '\f': buf_str(out, "\\f"); return;
    }
    if (cp >= 0x20 && cp < 0x7f) {
        char c = (char)cp;
        buf_add(out, &c, 1);
    } else if (cp < 0x10000) {
        put_u(out, cp);
    } else {
        cp -= 0x10000;
        put_u(out, 0xd800 | (cp >> 10));
        put_u(out, 0xdc00 | (cp & 0x3ff));
    }
}

/* UTF-8 with each maximal invalid subpart replaced by U+FFFD (what
 * CPython's "replace" error handler does). */
static void put_utf8(struct buf *out, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            put_cp(out, c);
            i++;
            continue;
        }
        unsigned need, cp, lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) { need = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2; cp = c & 0x0f;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3; cp = c & 0x07;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            put_cp(out, 0xfffd);
            i++;
            continue;
        }
        size_t j = i + 1;
        unsigned got = 0;
        while (got < need && j < n) {
            unsigned d = s[j];
            if (d < lo || d > hi)
                break;
            cp = (cp << 6) | (d & 0x3f);
            lo = 0x80;
            hi = 0xbf;
            j++;
            got++;
        }
        put_cp(out, got == need ? cp : 0xfffd);
        i = j;
    }
}

/* ---- Docker's json-file log -------------------------------------------- */

struct source {
    int fd;
    const char *stream;    /* "stdout" / "stderr" */
    char kind;             /* attach frame kind */
    struct buf partial;
};

static int log_fd = -1;
static const char *log_path;
static const char *log_attrs;      /* $SANDBOX_LOG_ATTRS: a JSON object, or NULL */
static long long log_max_size;     /* 0: no rotation */
static long log_max_files = 1;

/* Docker's json-file rotation (helpers/container/logconfig.py, rotate):
 * once the file holds max-size bytes, it becomes LOG.1 (LOG.1 becomes
 * LOG.2, ..., the oldest beyond max-file goes); with max-file 1 it is
 * emptied in place.  A failed rename leaves the live file growing. */
static void log_rotate(void)
{
    struct stat st;
    if (!log_max_size || fstat(log_fd, &st) < 0 || st.st_size < log_max_size)
        return;
    if (log_max_files <= 1) {
        if (ftruncate(log_fd, 0) < 0)
            return;
        return;
    }
    char older[4200], newer[4200];
    snprintf(older, sizeof older, "%s.%ld", log_path, log_max_files - 1);
    unlink(older);
    for (long i = log_max_files - 1; i >= 1; i--) {
        snprintf(older, sizeof older, "%s.%ld", log_path, i);
        if (i == 1)
            snprintf(newer, sizeof newer, "%s", log_path);
        else
            snprintf(newer, sizeof newer, "%s.%ld", log_path, i - 1);
        if (rename(newer, older) < 0 && errno != ENOENT && i == 1)
            return;
    }
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    close(log_fd);
    log_fd = fd;
}

static void log_entry(struct buf *out, const char *stream, const char *p, size_t n)
{
    struct timespec ts;
    struct tm tm;
    char when[64];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%09ldZ", ts.tv_nsec);
    buf_str(out, "{\"log\":\"");
    put_utf8(out, (const unsigned char *)p, n);
    buf_str(out, "\",\"stream\":\"");
    buf_str(out, stream);
    if (log_attrs) {               /* Docker's order: attrs before time */
        buf_str(out, "\",\"attrs\":");
        buf_str(out, log_attrs);
        buf_str(out, ",\"time\":\"");
    } else
        buf_str(out, "\",\"time\":\"");
    buf_str(out, when);
    buf_str(out, "\"}\n");
}

/* Append whole records only: a full disk (or quota) stops a write part
 * way, and half a record would run into the next one, so the file is cut
 * back to the last whole line written.  The lines that did not fit are
 * lost, as Docker's json-file loses them; the container goes on. */
static void log_append(const char *p, size_t n)
{
    if (log_fd < 0)
        return;                    /* --log-driver none */
    log_rotate();
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(log_fd, p + done, n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        done += (size_t)w;
    }
    if (done == n || done == 0)
        return;
    size_t keep = done;
    while (keep > 0 && p[keep - 1] != '\n')
        keep--;
    struct stat st;
    if (fstat(log_fd, &st) == 0 && st.st_size >= (off_t)(done - keep))
        if (ftruncate(log_fd, st.st_size - (off_t)(done - keep)) < 0)
            return;
}

static void log_write(struct source *src, const char *data, size_t n)
{
    struct buf out = {0};
    struct buf *b = &src->partial;
    buf_add(b, data, n);
    size_t start = 0;
    for (;;) {
        char *nl = memchr(b->p + start, '\n', b->len - start);
        if (!nl)
            break;
        size_t end = (size_t)(nl - b->p) + 1;
        while (end - start > MAX_PARTIAL) {     /* a long line, even when whole */
            log_entry(&out, src->stream, b->p + start, MAX_PARTIAL);
            start += MAX_PARTIAL;
        }
        log_entry(&out, src->stream, b->p + start, end - start);
        start = end;
    }
    while (b->len - start >= MAX_PARTIAL) {
        log_entry(&out, src->stream, b->p + start, MAX_PARTIAL);
        start += MAX_PARTIAL;
    }
    memmove(b->p, b->p + start, b->len - start);
    b->len -= start;
    if (out.len)
        log_append(out.p, out.len);
    free(out.p);
}

static void log_close(struct source *srcs, int n)
{
    struct buf out = {0};
    for (int i = 0; i < n; i++)
        if (srcs[i].partial.len)
            log_entry(&out, srcs[i].stream, srcs[i].partial.p, srcs[i].partial.len);
    if (out.len)
        log_append(out.p, out.len);
    free(out.p);
    if (log_fd >= 0)
        close(log_fd);
}

/* ---- attach clients ---------------------------------------------------- */

struct client { int fd; int reading; };
static struct client clients[MAX_CLIENTS];
static int nclients;

static void drop_client(int i)
{
    close(clients[i].fd);
    clients[i] = clients[--nclients];
}

/* A new client; with a terminal, first an empty "t" frame that carries
 * the pty's master (SCM_RIGHTS), with which the client keeps the
 * container's window size its own (attach.py). */
static void add_client(int c, int terminal)
{
    static const char head[5] = {'t', 0, 0, 0, 0};
    if (terminal >= 0 && send_with_fd(c, head, sizeof head, terminal) < 0) {
        close(c);
        return;
    }
    clients[nclients++] = (struct client){c, 1};
}

static void broadcast(char kind, const char *data, size_t n)
{
    char head[5];
    head[0] = kind;
    head[1] = (char)(n >> 24);
    head[2] = (char)(n >> 16);
    head[3] = (char)(n >> 8);
    head[4] = (char)n;
    for (int i = 0; i < nclients;) {
        /* write_all: supervise() ignores SIGPIPE, so a client gone
         * away is an error here, not a signal. */
        if (write_all(clients[i].fd, head, 5) < 0 || write_all(clients[i].fd, data, n) < 0)
            drop_client(i);
        else
            i++;
    }
}

/* ---- published ports the server binds in the host's namespace ---------- */

struct direct { int ctr; char ip[INET6_ADDRSTRLEN]; int host; };
static struct direct directs[64];
static int ndirect;

static void parse_direct(const char *spec)
{
    char copy[4096], *save = NULL;
    snprintf(copy, sizeof copy, "%s", spec);
    for (char *item = strtok_r(copy, ",", &save); item && ndirect < 64;
         item = strtok_r(NULL, ",", &save)) {
        char *first = strchr(item, ':'), *last = strrchr(item, ':');
        if (!first || first == last)
            continue;
        struct direct *d = &directs[ndirect++];
        d->ctr = atoi(item);
        snprintf(d->ip, sizeof d->ip, "%.*s", (int)(last - first - 1), first + 1);
        d->host = atoi(last + 1);
    }
}

static int open_pidfd(pid_t tid)
{
    int fd = (int)syscall(SYS_pidfd_open, tid, 0);
    if (fd >= 0 || errno != EINVAL)
        return fd;
    /* A thread other than the leader: its process's (the fd table is
     * the process's). */
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int tgid = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Tgid: %d", &tgid) == 1)
            break;
    fclose(f);
    return tgid > 0 ? (int)syscall(SYS_pidfd_open, tgid, 0) : -1;
}

static unsigned fd_flags_of(pid_t tid, int fd)
{
    char path[64], line[128];
    unsigned flags = 0;
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)tid, fd);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "flags: %o", &flags) == 1)
            break;
    fclose(f);
    return flags & O_CLOEXEC;
}

/* 0: done (the caller's fd is now the host socket); > 0: fail the call
 * with that errno; < 0: let the call go ahead as it is. */
static int go_direct(int nfd, struct seccomp_notif *req)
{
    int sockfd = (int)req->data.args[0];
    socklen_t len = (socklen_t)req->data.args[2];
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    if (len < sizeof(sa_family_t) || len > sizeof sa)
        return -1;
    struct iovec here = {&sa, len};
    struct iovec there = {(void *)(uintptr_t)req->data.args[1], len};
    if (process_vm_readv((pid_t)req->pid, &here, 1, &there, 1, 0) != (ssize_t)len)
        return -1;
    int port;
    if (sa.ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
        port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    else if (sa.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    else
        return -1;
    struct direct *d = NULL;
    for (int i = 0; i < ndirect; i++)
        if (directs[i].ctr == port)
            d = &directs[i];
    if (!d)
        return -1;

    /* The caller's socket, to copy its kind and options from; the id
     * check makes sure the pid still is the caller's. */
    int pidfd = open_pidfd((pid_t)req->pid);
    if (pidfd < 0)
        return -1;
    if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) {
        close(pidfd);
        return -1;
    }
    int cfd = (int)syscall(SYS_pidfd_getfd, pidfd, sockfd, 0);
    close(pidfd);
    if (cfd < 0)
        return -1;
    int ret = -1, hfd = -1, type = 0, proto = 0, domain = 0;
    socklen_t ol = sizeof(int);
    if (getsockopt(cfd, SOL_SOCKET, SO_TYPE, &type, &ol) < 0 || type != SOCK_STREAM)
        goto out;
    ol = sizeof(int);
    if (getsockopt(cfd, SOL_SOCKET, SO_PROTOCOL, &proto, &ol) < 0 || proto != IPPROTO_TCP)
        goto out;
    ol = sizeof(int);
    if (getsockopt(cfd, SOL_SOCKET, SO_DOMAIN, &domain, &ol) < 0 || domain != sa.ss_family)
        goto out;
    int status = fcntl(cfd, F_GETFL);
    hfd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC |
                 (status >= 0 && (status & O_NONBLOCK) ? SOCK_NONBLOCK : 0), IPPROTO_TCP);
    if (hfd < 0)
        goto out;
    static const int opts[][2] = {
        {SOL_SOCKET, SO_REUSEADDR}, {SOL_SOCKET, SO_REUSEPORT},
        {SOL_SOCKET, SO_KEEPALIVE}, {IPPROTO_TCP, TCP_NODELAY},
        {IPPROTO_TCP, TCP_DEFER_ACCEPT}, {IPPROTO_IPV6, IPV6_V6ONLY},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        int v;
        if (opts[i][0] == IPPROTO_IPV6 && domain != AF_INET6)
            continue;
        ol = sizeof v;
        if (getsockopt(cfd, opts[i][0], opts[i][1], &v, &ol) == 0)
            setsockopt(hfd, opts[i][0], opts[i][1], &v, ol);
    }
    /* The host's side of the binding: its address (any when none was
     * given; IPv4 as v4-mapped for an IPv6 socket) and port. */
    struct sockaddr_storage ha;
    socklen_t hl;
    memset(&ha, 0, sizeof ha);
    if (domain == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ha;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)d->host);
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        if (d->ip[0] && inet_pton(AF_INET, d->ip, &in->sin_addr) != 1)
            goto out;
        hl = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ha;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)d->host);
        in6->sin6_addr = in6addr_any;
        if (d->ip[0] && strcmp(d->ip, "0.0.0.0") != 0 &&
            inet_pton(AF_INET6, d->ip, &in6->sin6_addr) != 1) {
            char mapped[INET6_ADDRSTRLEN + 8];
            snprintf(mapped, sizeof mapped, "::ffff:%s", d->ip);
            if (inet_pton(AF_INET6, mapped, &in6->sin6_addr) != 1)
                goto out;
        }
        hl = sizeof *in6;
    }
    if (bind(hfd, (struct sockaddr *)&ha, hl) < 0) {
        ret = errno;
        goto out;
    }
    struct seccomp_notif_addfd add = {
        .id = req->id, .flags = SECCOMP_ADDFD_FLAG_SETFD, .srcfd = (uint32_t)hfd,
        .newfd = (uint32_t)sockfd, .newfd_flags = fd_flags_of((pid_t)req->pid, sockfd),
    };
    if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) >= 0)
        ret = 0;
out:
    if (hfd >= 0)
        close(hfd);
    close(cfd);
    return ret;
}

/* One bind(2) of the container's: swapped (go_direct), refused, or let be. */
static void answer(int nfd)
{
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    memset(&req, 0, sizeof req);
    if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        return;                  /* the caller is gone (ENOENT) or EINTR */
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    if (req.data.nr == __NR_bind) {
        int r = go_direct(nfd, &req);
        if (r >= 0) {
            resp.flags = 0;
            resp.error = -r;
        }
    }
    ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* An fd or a pid (-1: none); pids go up to pid_max, 4194304 at most. */
static int parse_num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < -1 || v > 0x7fffffffL) {
        fprintf(stderr, "sandbox-monitor: bad number: %s\n", s);
        exit(125);
    }
    return (int)v;
}

static int wait_code(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return 125;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* Where a failure to hand back to Python is written down: next to the log,
 * as the Python supervisor does with its own failures. */
static void note_failure(const char *log_path, const char *what)
{
    char path[4096];
    const char *slash = strrchr(log_path, '/');
    int dir = slash ? (int)(slash - log_path) : 0;
    snprintf(path, sizeof path, "%.*s%ssupervisor.log", dir, log_path, slash ? "/" : "");
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd >= 0) {
        dprintf(fd, "sandbox-monitor: %s: %s\n", what, strerror(errno));
        close(fd);
    }
}

static int supervise(int argc, char **argv)
{
    if (argc < 12) {
        fprintf(stderr, "usage: sandbox-monitor supervise LOG LOGMAX CPID LISTENFD "
                        "STDINFD OUTFD ERRFD TTY NOTIFYFD DIRECT CMD...\n");
        return 125;
    }
    log_path = argv[1];
    log_attrs = getenv("SANDBOX_LOG_ATTRS");
    if (log_attrs && log_attrs[0] != '{')
        log_attrs = NULL;
    if (sscanf(argv[2], "%lld:%ld", &log_max_size, &log_max_files) != 2)
        log_max_size = 0, log_max_files = 1;
    pid_t cpid = parse_num(argv[3]);
    int listen_fd = parse_num(argv[4]);
    int stdin_fd = parse_num(argv[5]);
    int out_fd = parse_num(argv[6]);
    int err_fd = parse_num(argv[7]);
    int tty = strcmp(argv[8], "1") == 0;
    int notify_fd = parse_num(argv[9]);
    parse_direct(argv[10]);
    char **cmd = argv + 11;
    int cmdc = argc - 11;

    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[2], "-") != 0) {
        log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (log_fd < 0)
            die(log_path);
    }

    struct source srcs[2];
    int nsrc = 0;
    memset(srcs, 0, sizeof srcs);
    srcs[nsrc++] = (struct source){out_fd, "stdout", '1', {0}};
    if (err_fd >= 0 && !tty)
        srcs[nsrc++] = (struct source){err_fd, "stderr", '2', {0}};
    int open_srcs[2] = {1, nsrc > 1};
    static char data[CHUNK];

    /* A client that connected before the start (run -it, start -a: the
     * Python supervisor waited for it before the exec) is taken before any
     * output is read, so it misses none of it. */
    if (listen_fd >= 0) {
        struct pollfd lp = {listen_fd, POLLIN, 0};
        while (nclients < MAX_CLIENTS && poll(&lp, 1, 0) == 1 && (lp.revents & POLLIN)) {
            int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                break;
            add_client(c, tty ? out_fd : -1);
        }
    }

    for (;;) {
        struct pollfd pfd[2 + 2 + MAX_CLIENTS];
        /* -1..-2: source; -3: listen; -4: seccomp; >= 0: client */
        int who[2 + 2 + MAX_CLIENTS];
        int n = 0, left = 0;
        for (int i = 0; i < nsrc; i++)
            if (open_srcs[i]) {
                pfd[n] = (struct pollfd){srcs[i].fd, POLLIN, 0};
                who[n++] = -1 - i;
                left++;
            }
        if (!left)
            break;
        if (notify_fd >= 0) {
            pfd[n] = (struct pollfd){notify_fd, POLLIN, 0};
            who[n++] = -4;
        }
        if (listen_fd >= 0 && nclients < MAX_CLIENTS) {
            pfd[n] = (struct pollfd){listen_fd, POLLIN, 0};
            who[n++] = -3;
        }
        for (int i = 0; i < nclients; i++)
            if (clients[i].reading) {
                pfd[n] = (struct pollfd){clients[i].fd, POLLIN, 0};
                who[n++] = clients[i].fd;
            }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        for (int k = 0; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            if (who[k] <= -1 && who[k] >= -2) {
                struct source *src = &srcs[-1 - who[k]];
                ssize_t r = read(src->fd, data, sizeof data);
                if (r < 0 && (errno == EINTR || errno == EAGAIN))
                    continue;
                if (r <= 0) {        /* EOF, or EIO from a pty master */
                    open_srcs[-1 - who[k]] = 0;
                    continue;
                }
                log_write(src, data, (size_t)r);
                broadcast(src->kind, data, (size_t)r);
            } else if (who[k] == -4) {
                if (pfd[k].revents & POLLIN)
                    answer(notify_fd);
                else {                 /* no process left under the filter */
                    close(notify_fd);
                    notify_fd = -1;
                }
            } else if (who[k] == -3) {
                int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0)
                    add_client(c, tty ? out_fd : -1);
            } else {
                int i = 0;
                while (i < nclients && clients[i].fd != who[k])
                    i++;
                if (i == nclients)
                    continue;          /* dropped by a broadcast meanwhile */
                ssize_t r = recv(clients[i].fd, data, sizeof data, 0);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r > 0) {
                    if (stdin_fd >= 0 && write_all(stdin_fd, data, (size_t)r) < 0)
                        stdin_fd = -1;
                    continue;
                }
                /* EOF of the client's stdin; it stays for the output.  A
                 * pipe (not the pty master) is closed, as docker attach
                 * does to a container made with -i. */
                clients[i].reading = 0;
                if (!tty && stdin_fd >= 0) {
                    close(stdin_fd);
                    stdin_fd = -1;
                }
            }
        }
    }

    if (notify_fd >= 0)
        close(notify_fd);
    int code = wait_code(cpid);
    log_close(srcs, nsrc);
    for (int i = 0; i < nsrc; i++)
        close(srcs[i].fd);
    if (stdin_fd >= 0 && stdin_fd != out_fd)
        close(stdin_fd);

    /* Python tells the attached clients the exit code once it has
     * recorded it: they stay open across the exec. */
    char text[16], fds[MAX_CLIENTS * 12 + 1];
    size_t used = 0;
    snprintf(text, sizeof text, "%d", code);
    fds[0] = '\0';
    for (int i = 0; i < nclients; i++) {
        fcntl(clients[i].fd, F_SETFD, 0);
        used += (size_t)snprintf(fds + used, sizeof fds - used, "%s%d",
                                 i ? "," : "", clients[i].fd);
    }
    char **args = calloc((size_t)cmdc + 3, sizeof *args);
    if (!args)
        die("out of memory");
    memcpy(args, cmd, (size_t)cmdc * sizeof *args);
    args[cmdc] = text;
    args[cmdc + 1] = fds;
    execv(args[0], args);
    note_failure(log_path, args[0]);
    return 125;
}

static volatile sig_atomic_t parent_gone;
static pid_t reaped;

static void on_parent_gone(int sig)
{
    (void)sig;
    parent_gone = 1;
    kill(reaped, SIGKILL);
}

/* An --rm container's directory, gone from the store at once (renamed to
 * GRAVE, in the staging directory), then deleted. */
static void remove_container(const char *dir, const char *grave)
{
    remove_tree(bury(dir, grave, 0700) ? grave : dir);
}

static int reap(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: sandbox-monitor reap GPID ROOTFS CGROUPDIR MARKER RMDIR GRAVE\n");
        return 125;
    }
    reaped = parse_num(argv[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_parent_gone;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    int code = wait_code(reaped);
    if (argv[3][0]) {
        char path[4096];
        snprintf(path, sizeof path, "%s/memory.events", argv[3]);
        FILE *f = fopen(path, "re");
        if (f) {
            char line[256];
            long kills = 0;
            while (fgets(line, sizeof line, f))
                if (sscanf(line, "oom_kill %ld", &kills) == 1)
                    break;
            fclose(f);
            if (kills > 0) {
                int fd = open(argv[4], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd >= 0)
                    close(fd);
            }
        }
    }
    umount2(argv[2], MNT_DETACH);
    if (parent_gone && argv[5][0] && argv[6][0])
        remove_container(argv[5], argv[6]);
    return code;
}

static int health(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sandbox-monitor health DELAYMS PROBE...\n");
        return 125;
    }
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return 0;                      /* the supervisor is gone already */
    long delay = parse_num(argv[1]);
    while (delay > 0) {
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return 1;
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            dup2(p[1], 1);
            execv(argv[2], argv + 2);
            _exit(127);
        }
        close(p[1]);
        char buf[32];
        size_t n = 0;
        for (;;) {
            ssize_t r = read(p[0], buf + n, sizeof buf - 1 - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            n += (size_t)r;
            if (n == sizeof buf - 1)
                break;
        }
        close(p[0]);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        buf[n] = '\0';
        delay = strtol(buf, NULL, 10);
    }
    return 0;
}

/*
 * The keeper of the user's network namespace (helpers/network/bridge.py)
 * runs, where this program is built,
 *
 *   sandbox-monitor dns TABLE
 *
 * with fd 3 a UDP socket bound to port 53 of every address of that
 * namespace (IP_PKTINFO on): each network's gateway answers its
 * containers' DNS questions for the names of the containers on their
 * networks, as Docker's embedded DNS and podman's aardvark-dns do.  TABLE
 * (written by helpers/network/usernet.py, replaced whole on each change,
 * read again when its inode, size or time changes) has a line per
 * container and network: "GATEWAY ADDRESS ID NAME...".  The asker is the
 * container with the question's source address on the gateway's network;
 * a name of a container on a network the asker is on (or, for an asker
 * not in the table, on the gateway's) gets its A records (an empty answer
 * for other types), and such a container's address its name (PTR, of
 * "D.C.B.A.in-addr.arpa"); any other question REFUSED, so that the resolver asks
 * the next name server in resolv.conf (the host's): this server never
 * forwards, and names on networks the asker is not on are not answered.
 */
struct dns_entry {
    struct in_addr gateway, addr;
    char id[13];
    char name[254];
    int first;                          /* the line's first name: the container's */
};
static struct dns_entry *dns_table;
static size_t dns_len;
static struct stat dns_seen;

static void dns_load(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        memset(&st, 0, sizeof st);
    if (st.st_ino == dns_seen.st_ino && st.st_size == dns_seen.st_size &&
        st.st_mtim.tv_sec == dns_seen.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == dns_seen.st_mtim.tv_nsec)
        return;
    dns_seen = st;
    dns_len = 0;
    FILE *f = st.st_ino ? fopen(path, "re") : NULL;
    if (!f)
        return;
    char line[4096];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *gw = strtok_r(line, " \t\n", &save);
        char *ip = strtok_r(NULL, " \t\n", &save);
        char *id = strtok_r(NULL, " \t\n", &save);
        struct in_addr g, a;
        if (!gw || !ip || !id || strlen(id) >= sizeof dns_table->id ||
            inet_pton(AF_INET, gw, &g) != 1 || inet_pton(AF_INET, ip, &a) != 1)
            continue;
        int first = 1;
        for (char *name; (name = strtok_r(NULL, " \t\n", &save)) != NULL; first = 0) {
            if (strlen(name) >= sizeof dns_table->name)
                continue;
            if (dns_len == cap) {
                size_t more = cap ? cap * 2 : 64;
                struct dns_entry *t = realloc(dns_table, more * sizeof *t);
                if (!t)
                    break;
                dns_table = t;
                cap = more;
            }
            struct dns_entry *e = &dns_table[dns_len++];
            e->gateway = g;
            e->addr = a;
            strcpy(e->id, id);
            e->first = first;
            for (size_t i = 0; (e->name[i] = (char)tolower((unsigned char)name[i])); i++)
                ;
        }
    }
    fclose(f);
}

/* Whether the container with entry ``asker`` (or, with none, the gateway
 * gw's network) is on entry e's network. */
static int dns_visible(const struct dns_entry *e, const struct dns_entry *asker,
                       struct in_addr gw)
{
    if (!asker)
        return e->gateway.s_addr == gw.s_addr;
    for (size_t i = 0; i < dns_len; i++)
        if (strcmp(dns_table[i].id, asker->id) == 0 &&
            dns_table[i].gateway.s_addr == e->gateway.s_addr)
            return 1;
    return 0;
}

/* The reply to query q (n bytes) from src to gateway gw, in r; its length,
 * or 0 to drop the query (not a query, or malformed). */
static size_t dns_reply(const unsigned char *q, size_t n, struct in_addr src,
                        struct in_addr gw, unsigned char *r, size_t rmax)
{
    if (n < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
        return 0;                       /* a response, or not one question */
    char name[256];
    size_t pos = 12, len = 0;
    for (;;) {
        if (pos >= n)
            return 0;
        unsigned l = q[pos++];
        if (l == 0)
            break;
        if (l > 63 || pos + l > n || len + l + 1 >= sizeof name)
            return 0;                   /* (no compression in a question) */
        if (len)
            name[len++] = '.';
        for (unsigned i = 0; i < l; i++)
            name[len++] = (char)tolower(q[pos + i]);
        pos += l;
    }
    name[len] = '\0';
    if (pos + 4 > n || pos + 4 > rmax)
        return 0;
    unsigned qtype = (unsigned)q[pos] << 8 | q[pos + 1];
    unsigned qclass = (unsigned)q[pos + 2] << 8 | q[pos + 3];
    pos += 4;
    memcpy(r, q, pos);                  /* the header and the question */
    unsigned opcode = (q[2] >> 3) & 0xF;
    r[2] = (unsigned char)(0x80 | (q[2] & 0x79) | 0x04);  /* QR, opcode, RD; AA */
    r[3] = 0;
    memset(r + 6, 0, 6);                /* no answers, authority, additional yet */
    /* A reverse question (PTR of "D.C.B.A.in-addr.arpa"): the address. */
    struct in_addr reverse = {0};
    int is_reverse = 0;
    size_t suffix = strlen(".in-addr.arpa");
    if (len > suffix && strcmp(name + len - suffix, ".in-addr.arpa") == 0) {
        unsigned o[4];
        char tail;
        char digits[32];
        if (len - suffix < sizeof digits) {
            memcpy(digits, name, len - suffix);
            digits[len - suffix] = '\0';
            if (sscanf(digits, "%3u.%3u.%3u.%3u%c", &o[0], &o[1], &o[2], &o[3], &tail) == 4 &&
                o[0] < 256 && o[1] < 256 && o[2] < 256 && o[3] < 256) {
                unsigned char b[4] = {(unsigned char)o[3], (unsigned char)o[2],
                                      (unsigned char)o[1], (unsigned char)o[0]};
                memcpy(&reverse, b, 4);
                is_reverse = 1;
            }
        }
    }
    const struct dns_entry *asker = NULL;
    for (size_t i = 0; i < dns_len && !asker; i++)
        if (dns_table[i].gateway.s_addr == gw.s_addr && dns_table[i].addr.s_addr == src.s_addr)
            asker = &dns_table[i];
    int known = 0;
    unsigned answers = 0;
    size_t out = pos;
    for (size_t i = 0; opcode == 0 && (qclass == 1 || qclass == 255) && i < dns_len; i++) {
        struct dns_entry *e = &dns_table[i];
        if (is_reverse) {
            if (!e->first || e->addr.s_addr != reverse.s_addr || !dns_visible(e, asker, gw))
                continue;
            known = 1;
            if ((qtype != 12 && qtype != 255) || answers)
                continue;
            /* PTR: the container's name, as labels */
            unsigned char rdata[256];
            size_t rlen = 0, start = 0, nlen = strlen(e->name);
            for (size_t k = 0; k <= nlen; k++) {
                if (k < nlen && e->name[k] != '.')
                    continue;
                size_t l = k - start;
                if (l == 0 || l > 63 || rlen + l + 2 > sizeof rdata)
                    break;
                rdata[rlen++] = (unsigned char)l;
                memcpy(rdata + rlen, e->name + start, l);
                rlen += l;
                start = k + 1;
            }
            if (start <= nlen || out + 12 + rlen + 1 > rmax)
                continue;                   /* (a name that cannot be labels) */
            rdata[rlen++] = 0;
            static const unsigned char ptr[] = {0xC0, 0x0C, 0, 12, 0, 1, 0, 0, 0, 5};
            memcpy(r + out, ptr, sizeof ptr);
            r[out + 10] = (unsigned char)(rlen >> 8);
            r[out + 11] = (unsigned char)rlen;
            memcpy(r + out + 12, rdata, rlen);
            out += 12 + rlen;
            answers++;
            continue;
        }
        if (strcmp(e->name, name) != 0 || !dns_visible(e, asker, gw))
            continue;
        known = 1;
        if ((qtype != 1 && qtype != 255) || out + 16 > rmax)
            continue;
        static const unsigned char head[] = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4};
        memcpy(r + out, head, sizeof head);  /* the question's name, A, IN, TTL 5 */
        memcpy(r + out + sizeof head, &e->addr, 4);
        out += sizeof head + 4;
        answers++;
    }
    if (!known) {
        r[3] = opcode == 0 ? 5 : 4;     /* REFUSED: ask the next server; NOTIMP */
        return pos;
    }
    r[6] = (unsigned char)(answers >> 8);
    r[7] = (unsigned char)answers;
    return out;
}

static int dns(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sandbox-monitor dns TABLE (fd 3: the socket)\n");
        return 125;
    }
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        unsigned char q[512], r[512];
        union { char buf[CMSG_SPACE(sizeof(struct in_pktinfo))]; struct cmsghdr align; } c;
        struct sockaddr_in from;
        struct iovec iov = {q, sizeof q};
        struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
                           .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
        ssize_t n = recvmsg(3, &m, 0);
        if (n < 0) {
            if (errno == EINTR || errno == ENOMEM || errno == ENOBUFS)
                continue;
            /* No socket to serve: hold the namespace all the same (the
             * keeper's first task; its end would take every bridge). */
            fprintf(stderr, "sandbox-monitor: dns: recvmsg: %s\n", strerror(errno));
            for (;;)
                pause();
        }
        struct in_pktinfo *info = NULL;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
            if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO)
                info = (struct in_pktinfo *)CMSG_DATA(h);
        if (!info || (m.msg_flags & MSG_TRUNC))
            continue;
        dns_load(argv[1]);
        size_t len = dns_reply(q, (size_t)n, from.sin_addr, info->ipi_addr, r, sizeof r);
        if (len == 0)
            continue;
        /* From the address asked, out of the interface the query came in by. */
        struct in_pktinfo reply = {.ipi_ifindex = info->ipi_ifindex,
                                   .ipi_spec_dst = info->ipi_addr};
        memset(c.buf, 0, sizeof c.buf);
        struct cmsghdr *h = (struct cmsghdr *)c.buf;
        h->cmsg_level = IPPROTO_IP;
        h->cmsg_type = IP_PKTINFO;
        h->cmsg_len = CMSG_LEN(sizeof reply);
        memcpy(CMSG_DATA(h), &reply, sizeof reply);
        struct iovec out = {r, len};
        struct msghdr sm = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &out,
                            .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
        while (sendmsg(3, &sm, MSG_DONTWAIT) < 0 && errno == EINTR)
            ;
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "supervise") == 0)
        return supervise(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "reap") == 0)
        return reap(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "health") == 0)
        return health(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "dns") == 0)
        return dns(argc - 1, argv + 1);
    fprintf(stderr, "sandbox-monitor: a part of sandbox, not run by hand "
                    "(supervise | reap | health | dns)\n");
    return 125;
}
