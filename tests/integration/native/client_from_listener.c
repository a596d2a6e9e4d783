/* A hostile server, for test_network: binds a published port (so the
 * native monitor swaps in a socket of the host's network namespace), then
 * tries to turn that socket into a client of the host's loopback.
 *
 *   client_from_listener CTRPORT TARGETPORT...
 *
 * prints "bound PORT" (the port getsockname() reports), then for each
 * target "PORT connected|refused|timeout|error ERRNO". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
        printf("bind error %d\n", errno);
        return 1;
    }
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    printf("bound %d\n", ntohs(a.sin_port));
    listen(s, 8);
    fcntl(s, F_SETFL, O_NONBLOCK);
    for (int i = 2; i < argc; i++) {
        struct sockaddr unspec = {0};
        unspec.sa_family = AF_UNSPEC;
        connect(s, &unspec, sizeof unspec);            /* back to CLOSE */
        struct sockaddr_in t = {0};
        t.sin_family = AF_INET;
        t.sin_port = htons((unsigned short)atoi(argv[i]));
        t.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const char *what = "timeout";
        int err = 0;
        if (connect(s, (struct sockaddr *)&t, sizeof t) == 0) {
            what = "connected";
        } else if (errno == EINPROGRESS) {
            struct pollfd p = {s, POLLOUT, 0};
            if (poll(&p, 1, 3000) == 1) {
                socklen_t l = sizeof err;
                getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l);
                what = err == 0 ? "connected" : err == ECONNREFUSED ? "refused" : "error";
            }
        } else {
            what = errno == ECONNREFUSED ? "refused" : "error";
            err = errno;
        }
        printf("%s %s %d\n", argv[i], what, err);
    }
    fflush(stdout);
    return 0;
}
