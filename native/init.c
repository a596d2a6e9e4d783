/*
 * sandbox-init: the PID 1 of a container run with --init, what tini is to
 * Docker.  G (helpers/container/runtime.py, _native_init) execs it, from an
 * fd opened before the pivot, as argv ["sandbox-init"] with an empty
 * environment; it
 *   - reads its command from fd 3: PATH, N, the N arguments, then the
 *     environment, each NUL-ended;
 *   - runs it as its child, passes on the signals it gets (those that
 *     `sandbox run` forwards, SIGWINCH and SIGCONT), reaps whatever the
 *     kernel reparents to it, and exits with the command's status (128+N
 *     for signal N);
 *   - reports a failed exec on fd 4 as "E", errno and PATH, NUL-separated
 *     (the CLI makes Docker's message and code of it: _decode_failure), and
 *     exits 127 (ENOENT), 126 (cannot execute) or 125.
 * Being a fresh exec, it holds nothing of the host: the Python init (a fork
 * of the CLI, still used where this file is not built) had the user's
 * environment and arguments in its heap, which the container's processes
 * can read through /proc/1/mem where ptrace is not restricted.
 *
 * Run as argv ["sandbox-init", "setup"] it is G instead, the container's
 * first process, which sets the container up and execs the command (or
 * itself again as the init): setup.c.  As ["sandbox-init", "start", OPTIONS]
 * it is C, which makes the container's namespaces and root filesystem and
 * starts G, for a foreground `sandbox run`: start.c.
 *
 * Linked statically: it runs inside the container's root, which need not
 * have (this) C library.  No stdio, so that it stays small.  The interface
 * is private to runtime.py; the file name carries its version
 * (monitor.INIT_NAME, sandbox-init.N).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "native.h"

static pid_t child;

static void forward(int sig)
{
    if (child > 0)
        kill(child, sig);
}

static void say(int fd, const char *s)
{
    write_all(fd, s, strlen(s));
}

static int fail(const char *what)
{
    say(2, "sandbox-init: ");
    say(2, what);
    say(2, "\n");
    return 125;
}

/* The command's exec failed: "E" NUL errno NUL path to fd 4. */
static void report(int err, const char *path)
{
    char number[24];
    snprintf_int(number, sizeof number, err);
    const char *parts[] = {"E", number, path};
    write_parts(4, parts, 3);
}

int main(int argc, char **argv)
{
    static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
                                    SIGUSR2, SIGWINCH, SIGCONT};
    size_t len;
    if (argc == 2 && strcmp(argv[1], "setup") == 0)
        return setup_main();
    if (argc == 3 && strcmp(argv[1], "start") == 0)
        return start_main(argv[2]);
    if (argc != 1)
        return fail("a part of sandbox (its --init), not run by hand");
    prctl(PR_SET_NAME, "sandbox-init");
    char *in = read_all_fd(3, &len);
    if (!in)
        return fail("no command on fd 3");
    close(3);
    char *p = in, *end = in + len;          /* in[len] is a NUL of ours */
    char *path = p;
    p += strlen(p) + 1;
    if (p >= end)
        return fail("a damaged command on fd 3");
    long nargs = strtol(p, NULL, 10);
    p += strlen(p) + 1;
    if (p > end || nargs < 1 || nargs > (long)len)
        return fail("a damaged command on fd 3");
    char **args = calloc((size_t)nargs + 1, sizeof *args);
    char **env = calloc(len + 1, sizeof *env);
    if (!args || !env)
        return fail("out of memory");
    for (long i = 0; i < nargs; i++) {
        if (p >= end)
            return fail("a damaged command on fd 3");
        args[i] = p;
        p += strlen(p) + 1;
    }
    for (size_t i = 0; p < end; i++) {
        env[i] = p;
        p += strlen(p) + 1;
    }
    fcntl(4, F_SETFD, FD_CLOEXEC);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
        sigaction(forwarded[i], &sa, NULL);
    child = fork();
    if (child < 0)
        return fail("cannot fork");
    if (child == 0) {
        execve(path, args, env);
        int e = errno;
        report(e, path);
        _exit(e == ENOENT ? 127 : (e == ENOEXEC || e == EACCES || e == EISDIR ||
                                   e == EPERM) ? 126 : 125);
    }
    /* Nothing but stdio: the container's root may take PID 1's fds
     * (/proc/1/fd, pidfd_getfd: the same uid). */
    if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        if (pid == child)
            return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    }
}
