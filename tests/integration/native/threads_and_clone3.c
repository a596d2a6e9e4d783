/* For test_run's seccomp test: what glibc programs do that the namespace
 * rules must leave working, and clone3 itself.
 *
 * prints "thread 42" (pthread_create: glibc tries clone3 first and must
 * fall back to clone on ENOSYS), "spawn 0" (posix_spawn, the same), and
 * "clone3 ERRNO-NAME" for a bare clone3 call with no arguments (ENOSYS
 * under the default filter; EINVAL from the kernel without it). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void *answer(void *arg)
{
    return arg;
}

int main(void)
{
    pthread_t thread;
    void *result = NULL;
    int err = pthread_create(&thread, NULL, answer, (void *)42);
    if (err) {
        printf("thread %s\n", strerror(err));
        return 1;
    }
    pthread_join(thread, &result);
    printf("thread %ld\n", (long)result);

    char *argv[] = {"true", NULL};
    pid_t pid;
    int status = -1;
    err = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
    if (!err)
        waitpid(pid, &status, 0);
    printf("spawn %s\n", err ? strerror(err) : (status == 0 ? "0" : "failed"));

    long r = syscall(435 /* clone3 */, NULL, 0);
    printf("clone3 %s\n", r < 0 ? (errno == ENOSYS ? "ENOSYS" : errno == EINVAL ? "EINVAL"
                                   : strerror(errno)) : "returned");
    return 0;
}
