/*
 * The front of the frozen binary: dist/sandbox is this small program with
 * PyInstaller's one-folder build of sandbox appended (scripts/build-binary).
 *
 * PyInstaller's own one-file mode copies its ~20 MB of libraries into a new
 * temporary directory at every start and deletes it at exit: about 35 ms
 * of each command, twice what a `run` costs from a checkout.  This front
 * unpacks the folder once per user and version instead, into
 *
 *   ${XDG_CACHE_HOME:-$HOME/.cache}/sandbox/bin-ID    (else, when that
 *   ${TMPDIR:-/tmp}/sandbox-cache-EUID/bin-ID          cannot be used)
 *
 * (ID: the first 128 bits of the payload's sha256, so another build never
 * runs this one's files), and every start after the first only checks that
 * directory and execs the folder's program, with SANDBOX_BINARY set to this
 * file (what sandbox runs to run itself again: it unpacks afresh should the
 * cache have gone meanwhile).
 *
 * Safety: the directories must be the user's own (owner, not a symlink,
 * no group or other write), or they are not used; a version is unpacked
 * into a private temporary directory that becomes bin-ID by one rename(2),
 * so a start that is killed halfway, or two first starts at once, never
 * leave or run a half-written folder (the loser of the race removes its
 * copy; a dead unpacker's leftover goes at the next unpack).  Versions not
 * started for a day are removed when another one is unpacked.
 *
 * Payload (little-endian), entries until its end, parents before children:
 *   u8 kind ('d' directory, 'f' file, 'l' symlink), u8 0, u16 path length,
 *   u32 mode, u64 size, the relative path, then size bytes (a file's
 *   contents, a symlink's target).
 * Trailer, the file's last 56 bytes: "SBXPACK1", u64 payload offset,
 * u64 payload length, 32 hex characters of ID.
 *
 * Errors: "sandbox: ..." with a hint on stderr, exit 125 (sandbox's own).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "native.h"

#define MAGIC "SBXPACK1"
#define ID_LEN 32
#define TRAILER_LEN (8 + 8 + 8 + ID_LEN)
#define ENTRY_LEN 16
#define TOUCH_AFTER 3600        /* s: a used version's mtime is renewed */
#define UNUSED_FOR 86400        /* s: then another unpack removes it */

static void fail(const char *what, const char *where, int err)
{
    fprintf(stderr, "sandbox: cannot unpack the frozen binary %s%s%s%s%s\n"
            "  hint: it unpacks once into $XDG_CACHE_HOME/sandbox (default "
            "~/.cache/sandbox), else $TMPDIR/sandbox-cache-UID: make one of "
            "them a writable directory of yours (on a file system that "
            "allows exec)\n", what, where ? " " : "", where ? where : "",
            err ? ": " : "", err ? strerror(err) : "");
    exit(125);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int full_pread(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* A directory of ours: owner, a real directory, not writable by others. */
static int ours(const char *path, struct stat *st)
{
    if (lstat(path, st) < 0)
        return -1;
    if (!S_ISDIR(st->st_mode) || st->st_uid != geteuid() || (st->st_mode & 022)) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

/* mkdir -p (new ones 0700), then check that the last one is ours. */
static int make_ours(char *path)
{
    struct stat st;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        *p = '/';
        if (r < 0 && errno != EEXIST)
            return -1;
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    return ours(path, &st);
}

/* A relative path without empty, "." or ".." components. */
static int safe_path(const char *p, size_t len)
{
    if (len == 0 || p[0] == '/' || memchr(p, '\0', len))
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        size_t n = i - start;
        if (n == 0 || (n == 1 && p[start] == '.') ||
            (n == 2 && p[start] == '.' && p[start + 1] == '.'))
            return 0;
        start = i + 1;
    }
    return 1;
}

static int copy_out(int in, off_t off, int out, uint64_t size)
{
    while (size > 0) {
        size_t chunk = size > (1u << 30) ? (1u << 30) : (size_t)size;
        ssize_t n = sendfile(out, in, &off, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        size -= (uint64_t)n;
    }
    return 0;
}

/* The payload into the new directory dir (which must not exist yet). */
static int unpack(int self, off_t at, uint64_t length, const char *dir)
{
    char path[PATH_MAX], rel[PATH_MAX];
    unsigned char head[ENTRY_LEN];
    off_t end = at + (off_t)length;
    if (mkdir(dir, 0700) < 0)
        return -1;
    while (at < end) {
        if (full_pread(self, head, ENTRY_LEN, at) < 0)
            goto corrupt;
        unsigned kind = head[0];
        size_t plen = (size_t)head[2] | ((size_t)head[3] << 8);
        mode_t mode = (mode_t)(head[4] | (head[5] << 8) | (head[6] << 16)) & 0755;
        uint64_t size = le64(head + 8);
        at += ENTRY_LEN;
        if (plen >= sizeof(rel) || full_pread(self, rel, plen, at) < 0)
            goto corrupt;
        rel[plen] = '\0';
        at += (off_t)plen;
        if (!safe_path(rel, plen) || size > (uint64_t)(end - at) ||
            snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path))
            goto corrupt;
        if (kind == 'd') {
            if (mkdir(path, mode | 0700) < 0)
                return -1;
        } else if (kind == 'f') {
            int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                           mode | 0400);
            if (out < 0)
                return -1;
            int r = copy_out(self, at, out, size);
            int e = errno;
            close(out);
            if (r < 0) {
                errno = e;
                return -1;
            }
        } else if (kind == 'l') {
            char target[PATH_MAX];
            if (size >= sizeof(target) || full_pread(self, target, (size_t)size, at) < 0)
                goto corrupt;
            target[size] = '\0';
            if (symlink(target, path) < 0)
                return -1;
        } else {
            goto corrupt;
        }
        at += (off_t)size;
    }
    /* On disk before it becomes visible: a crash must not leave a version
     * directory of empty files that every later start would run. */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
    return 0;
corrupt:
    errno = EBADMSG;
    return -1;
}

/* Leftovers of dead unpackers, and versions unused for a day. */
static void prune(const char *base, const char *keep)
{
    DIR *d = opendir(base);
    struct dirent *e;
    char path[PATH_MAX];
    time_t now = time(NULL);
    if (!d)
        return;
    while ((e = readdir(d))) {
        struct stat st;
        if (strcmp(e->d_name, keep) == 0)
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", base, e->d_name) >= (int)sizeof(path))
            continue;
        if (strncmp(e->d_name, ".tmp-", 5) == 0) {
            const char *dash = strrchr(e->d_name, '-');
            long pid = strtol(dash + 1, NULL, 10);
            if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
                remove_tree(path);
        } else if (strncmp(e->d_name, "bin-", 4) == 0) {
            if (ours(path, &st) == 0 && now - st.st_mtime > UNUSED_FOR)
                remove_tree(path);
        }
    }
    closedir(d);
}

/* execv of the folder's program as the environment its bootloader
 * (PyInstaller's, one-folder mode) gives itself: it would otherwise set
 * LD_LIBRARY_PATH to its libraries and execve itself once more for that to
 * take effect (about a millisecond).  A bootloader that reads these
 * variables differently (another PyInstaller) still runs: it resets them
 * and restarts itself as usual. */
static const char *orig_library_path;   /* the caller's LD_LIBRARY_PATH */

static void exec_program(const char *exe, const char *dir, char **argv)
{
    char real[PATH_MAX], libs[PATH_MAX];
    const char *old = orig_library_path;
    static char path[2 * PATH_MAX + 2];
    if (realpath(exe, real) && snprintf(libs, sizeof(libs), "%s/_internal", dir) <
            (int)sizeof(libs)) {
        if (old && *old) {
            snprintf(path, sizeof(path), "%s:%s", libs, old);
            setenv("LD_LIBRARY_PATH_ORIG", old, 1);
        } else {
            snprintf(path, sizeof(path), "%s", libs);
        }
        setenv("LD_LIBRARY_PATH", path, 1);
        setenv("_PYI_ARCHIVE_FILE", real, 1);
        setenv("_PYI_PARENT_PROCESS_LEVEL", "1", 1);   /* restarted already */
    }
    execv(exe, argv);
}

/* Exec the version in base, unpacking it first if needed; returns only on
 * failure, with errno set. */
static void run_from(const char *base, int self, off_t at, uint64_t length,
                     const char *id, char **argv)
{
    char name[8 + ID_LEN], dir[PATH_MAX], exe[PATH_MAX], tmp[PATH_MAX];
    struct stat st;
    snprintf(name, sizeof(name), "bin-%s", id);
    if (snprintf(dir, sizeof(dir), "%s/%s", base, name) >= (int)sizeof(dir) ||
        snprintf(exe, sizeof(exe), "%s/sandbox", dir) >= (int)sizeof(exe) ||
        snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%ld", base, id, (long)getpid())
            >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return;
    }
    if (ours(dir, &st) == 0) {
        if (time(NULL) - st.st_mtime > TOUCH_AFTER)
            utimensat(AT_FDCWD, dir, NULL, 0);     /* in use: not pruned */
        exec_program(exe, dir, argv);
        if (errno != ENOENT)
            return;
        remove_tree(dir);        /* broken (a file removed by hand): again */
    } else if (errno != ENOENT) {
        return;
    }
    remove_tree(tmp);       /* a dead unpacker's that had our pid: not ours to keep */
    if (unpack(self, at, length, tmp) < 0) {
        int e = errno;
        remove_tree(tmp);
        errno = e;
        return;
    }
    if (rename(tmp, dir) < 0) {
        int e = errno;
        remove_tree(tmp);
        if (e != EEXIST && e != ENOTEMPTY) {
            errno = e;
            return;
        }
        /* Another start unpacked it first: theirs is as good. */
        if (ours(dir, &st) < 0)
            return;
    }
    prune(base, name);
    exec_program(exe, dir, argv);
}

int main(int argc, char **argv)
{
    static char me[PATH_MAX];
    unsigned char trailer[TRAILER_LEN];
    char id[ID_LEN + 1], base[PATH_MAX];
    struct stat st;
    const char *env;
    (void)argc;
    /* Installed set-user-ID (or -group), it would unpack and run what the
     * caller's HOME points at with the owner's rights. */
    if (getuid() != geteuid() || getgid() != getegid())
        fail("(set-user-ID or set-group-ID: refused)", NULL, 0);
    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        fail("(reading /proc/self/exe)", NULL, errno);
    ssize_t n = readlink("/proc/self/exe", me, sizeof(me) - 1);
    if (n <= 0)
        fail("(reading /proc/self/exe)", NULL, errno);
    me[n] = '\0';
    if (fstat(self, &st) < 0 || st.st_size < TRAILER_LEN ||
        full_pread(self, trailer, TRAILER_LEN, st.st_size - TRAILER_LEN) < 0 ||
        memcmp(trailer, MAGIC, 8) != 0)
        fail(me, "(no payload: not a complete build of scripts/build-binary)", 0);
    uint64_t offset = le64(trailer + 8), length = le64(trailer + 16);
    if (offset > (uint64_t)st.st_size || length > (uint64_t)st.st_size - TRAILER_LEN - offset)
        fail(me, "(a damaged file: its payload runs past its end)", 0);
    memcpy(id, trailer + 24, ID_LEN);
    id[ID_LEN] = '\0';
    for (int i = 0; i < ID_LEN; i++)
        if (!strchr("0123456789abcdef", id[i]))
            fail(me, "(a damaged file: a bad version id)", 0);
    if ((env = getenv("LD_LIBRARY_PATH")) && !(orig_library_path = strdup(env)))
        fail("(strdup)", NULL, errno);
    if (setenv("SANDBOX_BINARY", me, 1) < 0)
        fail("(setenv)", NULL, errno);

    int err = 0;
    const char *where = NULL;
    static char tried[PATH_MAX + 8];
    for (int choice = 0; choice < 2; choice++) {
        if (choice == 0) {
            env = getenv("XDG_CACHE_HOME");
            if (env && env[0] == '/')
                n = snprintf(base, sizeof(base), "%s/sandbox", env);
            else if ((env = getenv("HOME")) && env[0] == '/')
                n = snprintf(base, sizeof(base), "%s/.cache/sandbox", env);
            else
                continue;
        } else {
            env = getenv("TMPDIR");
            n = snprintf(base, sizeof(base), "%s/sandbox-cache-%ld",
                         env && env[0] == '/' ? env : "/tmp", (long)geteuid());
        }
        if (n < 0 || n >= (int)sizeof(base))
            continue;
        if (make_ours(base) == 0)
            run_from(base, self, (off_t)offset, length, id, argv);
        if (!where) {        /* the first choice's error is the one to tell */
            err = errno;
            snprintf(tried, sizeof(tried), "into %s", base);
            where = tried;
        }
    }
    fail(where ? where : "(no HOME, XDG_CACHE_HOME or TMPDIR to unpack into)", NULL, err);
    return 125;
}
