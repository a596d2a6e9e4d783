/*
 * Small helpers shared by sandbox-init's two modes (init.c, setup.c),
 * without stdio, so that the static program stays small.
 */
#ifndef SANDBOX_NATIVE_H
#define SANDBOX_NATIVE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void write_all(int fd, const void *buf, size_t n)
{
    const char *s = buf;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
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

#endif
