/*
 * Small helpers shared by the native programs (sandbox-init's three modes in
 * init.c, setup.c and start.c, the monitor in monitor.c, the binary's front in
 * unpack.c), without stdio, so that the static sandbox-init stays small.
 */
#ifndef SANDBOX_NATIVE_H
#define SANDBOX_NATIVE_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* All of buf to fd: 0, or -1 (errno) if a write fails. */
static inline int write_all(int fd, const void *buf, size_t n)
{
    const char *s = buf;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The n strings, NUL-separated, to fd in one write (a report to the CLI:
 * runtime._decode_failure reads the parts; cut at 8 KiB). */
static inline void write_parts(int fd, const char *parts[], int n)
{
    char msg[8192];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(parts[i]);
        if (len + l + 1 > sizeof msg)
            l = sizeof msg - len - 1;
        memcpy(msg + len, parts[i], l);
        len += l;
        if (i + 1 < n && len < sizeof msg)
            msg[len++] = '\0';
    }
    write_all(fd, msg, len);
}

/* The n strings, one after the other, NUL-ended, in text (cut to fit). */
static inline void join_text(char *text, size_t size, const char *const pieces[], size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(pieces[i]);
        if (len + l >= size)
            l = size - len - 1;
        memcpy(text + len, pieces[i], l);
        len += l;
    }
    text[len] = '\0';
}

static inline int remove_one(const char *path, const struct stat *st, int flag,
                             struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

/* Remove the tree at path, best effort (what can go, goes). */
static inline void remove_tree(const char *path)
{
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* An --rm container's directory out of the store at once: renamed to
 * grave, whose parent (the staging directory) is made with mode if
 * missing.  1 if renamed (the caller deletes grave), 0 if not (dir is
 * where it was). */
static inline int bury(const char *dir, const char *grave, mode_t mode)
{
    char parent[4096];
    size_t l = strlen(grave);
    if (l < sizeof parent) {
        memcpy(parent, grave, l + 1);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            mkdir(parent, mode);
        }
    }
    return rename(dir, grave) == 0;
}

/* The whole of fd (to EOF), NUL-ended (*len excludes that NUL); NULL on
 * error. */
static inline char *read_all_fd(int fd, size_t *len)
{
    size_t cap = 4096;
    char *buf = malloc(cap);
    *len = 0;
    if (!buf)
        return NULL;
    for (;;) {
        if (*len + 1 >= cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
        }
        ssize_t n = read(fd, buf + *len, cap - *len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        *len += (size_t)n;
    }
    buf[*len] = '\0';
    return buf;
}

/* The decimal digits of v, NUL-ended, in buf (size >= 24). */
/* ``n`` bytes of ``data`` on the unix socket ``sock`` with ``fd`` attached
 * (SCM_RIGHTS): all of them, or -1. */
static inline int send_with_fd(int sock, const void *data, size_t n, int fd)
{
    struct iovec iov = {(void *)data, n};
    union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control.space, .msg_controllen = sizeof control.space};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static inline void snprintf_int(char *buf, size_t size, long v)
{
    char digits[24];
    int d = 0;
    size_t n = 0;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    do {
        digits[d++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0 && n + 1 < size)
        buf[n++] = '-';
    while (d && n + 1 < size)
        buf[n++] = digits[--d];
    buf[n] = '\0';
}

int setup_main(void);
int start_main(const char *options);

#endif
