/*
 * sandbox-init's "setup" mode: G, the container's first process, as native
 * code.  C (helpers/container/runtime.py, _spawn_g) computes the whole
 * setup in Python, as a plan, and starts this program as the first process
 * of the new PID namespace with
 *   argv ["sandbox-init", "setup"], an empty environment,
 *   fds 0-2 the container's stdio (a new session: posix_spawn's setsid),
 *   fd 3 the plan, fd 4 the error pipe to the CLI, fd 5 the "go" pipe,
 *   fd 6 this program (for --init: exec'd again as the init, fresh).
 * The native C (start.c) starts it the same way, but as a child of its own
 * that calls setup_main() with those fds, without the exec (~0.3 ms less),
 * and with the plan the CLI computed.
 * The plan is a list of NUL-ended words: a version word, then steps, each a
 * letter and a fixed number of words (runtime._native_plan writes them, in
 * the order the Python G (_child_g) takes the same steps).
 *
 * Failures go to fd 4 in the form runtime._decode_failure reads:
 *   "125" NUL message NUL hint    a setup step failed
 *   "E" NUL errno NUL path        execve of the command failed
 *   "F" NUL errno NUL path        the command is not executable / missing
 *   "N" NUL name                  the command is not in $PATH
 * What was a Python fork of the CLI costs ~1.5 ms less as a fresh static
 * exec of this small program, and holds nothing of the CLI's memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <unistd.h>
#include <grp.h>
#include <limits.h>

#include "native.h"

#define PLAN_VERSION "sandbox-setup-3"

static char *cur, *end;

/* A setup step failed: "container setup failed: WHAT: strerror". */
static void failed(const char *what, int err)
{
    char text[4096 + 256];
    const char *pieces[] = {"container setup failed: ", what, ": ", strerror(err)};
    join_text(text, sizeof text, pieces, 4);
    const char *parts[] = {"125", text, ""};
    write_parts(4, parts, 3);
    _exit(125);
}

static void plain_failure(const char *text)
{
    const char *parts[] = {"125", text, ""};
    write_parts(4, parts, 3);
    _exit(125);
}

static void damaged(void)
{
    plain_failure("container setup failed: a damaged plan (sandbox-init)");
}

static const char *word(void)
{
    if (cur >= end)
        damaged();
    char *w = cur;
    cur += strlen(cur) + 1;
    return w;
}

/* A count, then that many words (at least ``least``): a NULL-ended array. */
static char **word_list(long least)
{
    long n = strtol(word(), NULL, 10);
    if (n < least || n > end - cur)
        damaged();
    char **list = calloc((size_t)n + 1, sizeof *list);
    if (!list)
        plain_failure("container setup failed: out of memory");
    for (long i = 0; i < n; i++)
        list[i] = (char *)word();
    return list;
}

static const char *maybe(const char *w)
{
    return *w ? w : NULL;
}

static unsigned long long hex(const char *w)
{
    return strtoull(w, NULL, 16);
}

static void mkdir_p(const char *path)
{
    char buf[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return;         /* (most are there: no mkdir of every ancestor) */
    size_t len = strlen(path);
    if (len >= sizeof buf)
        failed(path, ENAMETOOLONG);
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) < 0 && errno != EEXIST)
                failed(buf, errno);
            *p = c;
            if (!c)
                break;
        }
    }
    if (stat(path, &st) < 0)
        failed(path, errno);
    if (!S_ISDIR(st.st_mode))
        failed(path, ENOTDIR);
}

static void remount_readonly(const char *path)
{
    struct statvfs sv;
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
    if (statvfs(path, &sv) < 0)
        failed(path, errno);
    /* Locked flags of mounts from the host cannot be cleared in a user
     * namespace (runtime._statvfs_flags). */
    if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    if (mount(NULL, path, NULL, flags, NULL) < 0)
        failed(path, errno);
}

/* M source target fstype flags data kind readonly (runtime.MountOp) */
static void step_mount(void)
{
    const char *source = maybe(word()), *target = word(), *fstype = maybe(word());
    unsigned long flags = strtoul(word(), NULL, 10);
    const char *data = maybe(word()), *kind = word(), *readonly = word();
    struct stat st;
    if (kind[0] == 'f') {
        if (lstat(target, &st) < 0) {
            int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0 && errno == ENOENT) {
                /* Its directory first (most are there already). */
                char dir[4096];
                size_t l = strlen(target);
                if (l >= sizeof dir)
                    failed(target, ENAMETOOLONG);
                memcpy(dir, target, l + 1);
                char *slash = strrchr(dir, '/');
                if (slash && slash != dir) {
                    *slash = '\0';
                    mkdir_p(dir);
                }
                fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            }
            if (fd < 0)
                failed(target, errno);
            close(fd);
        }
    } else if (stat(target, &st) < 0 || !S_ISDIR(st.st_mode)) {
        if (lstat(target, &st) == 0 && !S_ISLNK(st.st_mode)) {
            char text[4096 + 64] = "cannot mount on ";
            strncat(text, target, 4096);
            strcat(text, ": not a directory");
            plain_failure(text);
        }
        mkdir_p(target);
    }
    if (mount(source, target, fstype, flags, data) < 0)
        failed(target, errno);
    if (*readonly)
        remount_readonly(target);
}

static void mask(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return;
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL)
                                : mount("/dev/null", path, NULL, MS_BIND, NULL);
    if (r < 0)
        failed(path, errno);
}

static void make_readonly(const char *path)
{
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
        if (errno == ENOENT)
            return;
        failed(path, errno);
    }
    remount_readonly(path);
}

static void interface_up(const char *name)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        failed(name, errno);
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        failed(name, errno);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        failed(name, errno);
    close(fd);
}

static void capset3(unsigned long long effective, unsigned long long permitted)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
        data[i].effective = (unsigned)(effective >> (32 * i));
        data[i].permitted = (unsigned)(permitted >> (32 * i));
        data[i].inheritable = 0;
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        failed("capset", errno);
}

static int cap_last_cap(void)
{
    char buf[32] = {0};
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
        failed("/proc/sys/kernel/cap_last_cap", errno);
    close(fd);
    return atoi(buf);
}

static void seccomp_filter(const char *text)
{
    size_t n = strlen(text) / 2;
    unsigned char *code = malloc(n + 1);
    if (!code || n % sizeof(struct sock_filter))
        plain_failure("container setup failed: a damaged seccomp filter");
    for (size_t i = 0; i < n; i++) {
        char pair[3] = {text[2 * i], text[2 * i + 1], 0};
        code[i] = (unsigned char)strtoul(pair, NULL, 16);
    }
    struct sock_fprog prog = {(unsigned short)(n / sizeof(struct sock_filter)),
                              (struct sock_filter *)code};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        failed("seccomp", errno);
    free(code);
}

static void set_user(const char *uid_w, const char *gid_w, const char *groups_w)
{
    uid_t uid = (uid_t)strtoul(uid_w, NULL, 10);
    gid_t gid = (gid_t)strtoul(gid_w, NULL, 10);
    if (strcmp(groups_w, "-") != 0) {       /* "-": a single-id map, no setgroups */
        size_t most = 1, n = 0;
        for (const char *c = groups_w; *c; c++)
            most += *c == ',';
        gid_t *groups = calloc(most, sizeof *groups);
        if (!groups)
            plain_failure("container setup failed: out of memory");
        for (const char *p = groups_w; *p && n < most; ) {
            char *next;
            groups[n++] = (gid_t)strtoul(p, &next, 10);
            if (*next != ',')
                break;
            p = next + 1;
        }
        if (setgroups(n, groups) < 0)
            failed("setgroups", errno);
        free(groups);
    }
    if (setresgid(gid, gid, gid) < 0)
        failed("setresgid", errno);
    if (setresuid(uid, uid, uid) < 0)
        failed("setresuid", errno);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The command's path, looked up as runtime._find_executable does. */
static const char *find_executable(const char *name, char **env)
{
    static char cand[4096 + NAME_MAX + 3];     /* dir (cut at 4096), "/", name, NUL */
    static char denied[sizeof cand];
    struct stat st;
    if (strchr(name, '/')) {
        if (stat(name, &st) < 0) {
            const char *parts[] = {"F", "2", name};
            write_parts(4, parts, 3);
            _exit(127);
        }
        if (S_ISDIR(st.st_mode) || access(name, X_OK) < 0) {
            const char *parts[] = {"F", "13", name};
            write_parts(4, parts, 3);
            _exit(126);
        }
        return name;
    }
    if (strlen(name) > NAME_MAX)            /* no file has such a name */
        goto not_found;
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (char **e = env; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            path = *e + 5;
    denied[0] = '\0';
    for (const char *p = path; ; ) {
        const char *colon = strchr(p, ':');
        size_t l = colon ? (size_t)(colon - p) : strlen(p);
        if (l == 0) {
            strcpy(cand, ".");
            l = 1;
        } else {
            if (l > 4096)
                l = 4096;
            memcpy(cand, p, l);
            cand[l] = '\0';
        }
        if (cand[l - 1] != '/')
            cand[l++] = '/';
        cand[l] = '\0';
        strcat(cand, name);
        if (is_file(cand)) {
            if (access(cand, X_OK) == 0)
                return cand;
            strcpy(denied, cand);
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    if (denied[0]) {
        const char *parts[] = {"F", "13", denied};
        write_parts(4, parts, 3);
        _exit(126);
    }
not_found:;
    const char *parts[] = {"N", name};
    write_parts(4, parts, 2);
    _exit(127);
}

/* --init: exec this program again as the init, with the command on a
 * memfd as fd 3 (main's protocol) and the error pipe as fd 4. */
static void exec_init(const char *path, char **args, char **env)
{
    int fd = memfd_create("sandbox-init", 0);
    if (fd < 0)
        failed("memfd_create", errno);
    char count[24];
    int nargs = 0;
    while (args[nargs])
        nargs++;
    snprintf_int(count, sizeof count, nargs);
    write_all(fd, path, strlen(path) + 1);
    write_all(fd, count, strlen(count) + 1);
    for (char **a = args; *a; a++)
        write_all(fd, *a, strlen(*a) + 1);
    for (char **e = env; *e; e++)
        write_all(fd, *e, strlen(*e) + 1);
    lseek(fd, 0, SEEK_SET);
    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            failed("dup2", errno);
        close(fd);
    }
    char *argv[] = {"sandbox-init", NULL}, *envp[] = {NULL};
    fcntl(4, F_SETFD, 0);
    syscall(SYS_execveat, 6, "", argv, envp, AT_EMPTY_PATH);
    char text[256] = "--init: sandbox-init did not start: ";
    strncat(text, strerror(errno), 200);
    plain_failure(text);
}

/* /proc/sys/KEY (dots as slashes) = VALUE, as runtime._write_sysctl:
 * after the pivot, in the container's namespaces; ``optional``: Docker's
 * defaults, which a kernel without them goes without. */
static void set_sysctl(const char *key, const char *value, int optional)
{
    char path[512] = "/proc/sys/";
    size_t n = strlen(path);
    for (const char *k = key; *k && n < sizeof path - 1; k++)
        path[n++] = *k == '.' ? '/' : *k;
    path[n] = '\0';
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value)) {
        close(fd);
        return;
    }
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (optional && e == ENOENT)
        return;
    char text[1024];
    const char *pieces[] = {"cannot set sysctl ", key, "=", value, ": ", strerror(e)};
    join_text(text, sizeof text, pieces, 6);
    const char *parts[] = {"125", text, "this kernel does not let a user namespace set it"};
    write_parts(4, parts, 3);
    _exit(125);
}

static void no_terminal(const char *why)
{
    char text[512];
    const char *pieces[] = {"cannot allocate a terminal in the container: /dev/pts/ptmx: ",
                            why};
    join_text(text, sizeof text, pieces, 2);
    const char *parts[] = {"125", text, "run without -t"};
    write_parts(4, parts, 3);
    _exit(125);
}

/* P uid: after the pivot, with the socket to P (the CLI or supervisor) as
 * fds 0-2: a pty of the container's own devpts (as Docker's: `tty` names
 * it), its master sent to P (SCM_RIGHTS), its slave owned by the
 * process's user, bound onto /dev/console as runc does, and our stdio and
 * controlling terminal (ptys.py and _take_container_terminal do the same
 * in Python).  The container's root controls its /dev: ptmx is opened
 * without following a link or blocking, and must be devpts' ptmx. */
static void take_terminal(uid_t uid)
{
    int flags = O_RDWR | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;
    int master = open("/dev/pts/ptmx", flags);
    if (master < 0) {
        /* A /dev of the host's (-v /dev:/dev): its pts' ptmx is mode 000,
         * its /dev/ptmx the device (ours is a link: ELOOP). */
        int e = errno;
        master = open("/dev/ptmx", flags);
        if (master < 0)
            no_terminal(strerror(e));
    }
    struct stat st;
    if (fstat(master, &st) < 0 || !S_ISCHR(st.st_mode) ||
            st.st_rdev != makedev(5, 2))
        no_terminal("not a pseudo-terminal multiplexer");
    int unlock = 0, number = 0;
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) & ~O_NONBLOCK);
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &number) < 0)
        failed("/dev/pts/ptmx", errno);
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        failed("TIOCGPTPEER", errno);
    if (fchown(slave, uid, (gid_t)-1) < 0 && errno != EINVAL)
        failed("the terminal's owner", errno);
    if (send_with_fd(0, "t", 1, master) < 0)
        failed("sending the terminal", errno);
    /* /dev/console: best effort (a /dev not ours to add the file to). */
    char name[32] = "/dev/pts/";
    snprintf_int(name + 9, sizeof name - 9, number);
    int console = open("/dev/console", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (console >= 0) {
        close(console);
        mount(name, "/dev/console", NULL, MS_BIND, NULL);
    }
    close(master);
    for (int fd = 0; fd < 3; fd++)
        if (dup2(slave, fd) < 0)
            failed("dup2", errno);
    close(slave);
    if (ioctl(0, TIOCSCTTY, 0) < 0)
        failed("TIOCSCTTY", errno);
}

/* Z name nargs args... nenv env... init */
static void step_exec(void)
{
    const char *name = word();
    char **args = word_list(1);
    char **env = word_list(0);
    int init = *word() != '\0';
    const char *path = find_executable(name, env);
    /* Default dispositions and no blocked signal for the command (ignored
     * ones would survive the exec: C's Python ignores SIGPIPE). */
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Until the CLI has recorded us as running ("g"; EOF: it is gone). */
    char go = 0;
    while (read(5, &go, 1) < 0 && errno == EINTR)
        ;
    if (go != 'g')
        _exit(125);
    close(5);
    if (init)
        exec_init(path, args, env);
    execve(path, args, env);
    int e = errno;
    char number[24];
    snprintf_int(number, sizeof number, e);
    const char *parts[] = {"E", number, path};
    write_parts(4, parts, 3);
    _exit(e == ENOENT ? 127 : (e == ENOEXEC || e == EACCES || e == EISDIR ||
                               e == EPERM) ? 126 : 125);
}

int setup_main(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "sandbox-init");
    for (int fd = 4; fd <= 6; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    size_t len;
    char *plan = read_all_fd(3, &len);
    close(3);
    if (!plan)
        plain_failure("container setup failed: no plan on fd 3 (sandbox-init)");
    cur = plan;
    end = plan + len;
    if (strcmp(word(), PLAN_VERSION) != 0)
        plain_failure("container setup failed: a plan of another version (sandbox-init)");
    while (cur < end) {
        const char *step = word();
        const char *a;
        switch (step[0]) {
        case 'P':
            take_terminal((uid_t)strtoul(word(), NULL, 10));
            break;
        case 'Y': {             /* Y key value optional: a namespaced sysctl */
            const char *key = word(), *value = word();
            set_sysctl(key, value, *word() != '\0');
            break;
        }
        case 'C': {             /* into the container's cgroup */
            a = word();
            int fd = open(a, O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, "0", 1) != 1)
                failed(a, errno);
            close(fd);
            break;
        }
        case 'U':
            if (unshare((int)strtol(word(), NULL, 10)) < 0)
                failed("unshare", errno);
            break;
        case 'M':
            step_mount();
            break;
        case 'L': {             /* a symlink, unless the name exists */
            const char *source = word(), *target = word();
            struct stat st;
            if (lstat(target, &st) < 0 && symlink(source, target) < 0)
                failed(target, errno);
            break;
        }
        case 'V':               /* pivot_root(".", ".") and detach the old root */
            a = word();
            if (chdir(a) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
                    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
                failed(a, errno);
            break;
        case 'D':               /* the working directory, inside the new root */
            mkdir_p(word());
            break;
        case 'K':
            mask(word());
            break;
        case 'O':
            make_readonly(word());
            break;
        case 'R':
            remount_readonly("/");
            break;
        case 'H':
            a = word();
            if (sethostname(a, strlen(a)) < 0)
                failed("sethostname", errno);
            break;
        case 'N':
            a = word();
            if (setdomainname(a, strlen(a)) < 0)
                failed("setdomainname", errno);
            break;
        case 'I':
            interface_up("lo");
            break;
        case 'X':
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                failed("no_new_privs", errno);
            break;
        case 'S':
            seccomp_filter(word());
            break;
        case 'B': {             /* the bounding set, then all of the rest */
            unsigned long long keep = hex(word());
            int last = cap_last_cap();
            for (int cap = 0; cap <= last && cap < 64; cap++)
                if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                    failed("PR_CAPBSET_DROP", errno);
            unsigned long long all = last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
            capset3(all, all);
            break;
        }
        case 'G': {
            const char *uid = word(), *gid = word();
            set_user(uid, gid, word());
            break;
        }
        case 'E': {
            unsigned long long mask_ = hex(word());
            capset3(mask_, mask_);
            break;
        }
        case 'A':               /* (a kernel without ambient capabilities: none) */
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
            break;
        case 'W':
            a = word();
            if (chdir(a) < 0)
                failed(a, errno);
            break;
        case 'Z':
            step_exec();            /* does not return */
            break;
        default:
            damaged();
        }
    }
    plain_failure("container setup failed: a plan without a command (sandbox-init)");
    return 125;
}
