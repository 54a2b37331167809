/* SPDX-License-Identifier: MIT */
/*
 * sv-flood: abusive clients for authserver tests.
 *   sv-flood --server HOST:PORT --count N --mode idle|partial|random [--hold SECONDS]
 *            [--source ADDRESS]
 * idle: connect and send nothing; partial: send half a header; random: send 1..2048
 * random bytes and read whatever comes back. Holds the connections open for --hold
 * seconds (half-open handshakes), then prints "opened N, answered M" and exits 0.
 * --source binds the connections to a local address (e.g. 127.1.0.2, to flood from another
 * network than the devices under test; or an IPv6 address with an IPv6 server).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto.h"
#include "devicectl.h"
#include "sv-net.h"

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "server", required_argument, NULL, 's' },
                { "count",  required_argument, NULL, 'n' },
                { "mode",   required_argument, NULL, 'm' },
                { "hold",   required_argument, NULL, 'h' },
                { "source", required_argument, NULL, 'S' },
                { 0 }
        };
        const char *server = NULL, *mode = "idle", *source = NULL;
        unsigned count = 1, hold = 0, opened = 0, answered = 0;
        struct rlimit rl;
        int *fds, c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's': server = optarg; break;
                case 'n': count = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'm': mode = optarg; break;
                case 'h': hold = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'S': source = optarg; break;
                default: return 2;
                }
        if (!server || count == 0)
                return 2;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < count + 64) {
                rl.rlim_cur = rl.rlim_max < count + 64 ? rl.rlim_max : count + 64;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        fds = calloc(count, sizeof *fds);
        if (!fds)
                return 1;
        for (unsigned i = 0; i < count; i++) {
                uint8_t junk[2048];
                size_t len = 0;

                fds[i] = -1;
                if ((source ? sv_connect_from(server, source, &fds[i]) : net_connect(server, 5000, &fds[i])) < 0)
                        continue;
                opened++;
                if (strcmp(mode, "partial") == 0) {
                        junk[0] = 1;
                        junk[1] = 1;
                        len = 2;
                } else if (strcmp(mode, "random") == 0) {
                        if (crypto_random(junk, sizeof junk) < 0)
                                return 1;
                        len = 1 + (junk[0] << 8 | junk[1]) % sizeof junk;
                        if (crypto_random(junk, len) < 0)
                                return 1;
                }
                if (len > 0)
                        (void) net_send_frame(fds[i], junk, len, now_ms() + 2000);
        }
        if (strcmp(mode, "random") == 0)
                for (unsigned i = 0; i < count; i++) {
                        struct pollfd p = { .fd = fds[i], .events = POLLIN };
                        uint8_t buf[64];

                        if (fds[i] >= 0 && poll(&p, 1, 2000) > 0 && read(fds[i], buf, sizeof buf) > 0)
                                answered++;
                }
        sleep(hold);
        for (unsigned i = 0; i < count; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        free(fds);
        printf("opened %u, answered %u\n", opened, answered);
        return 0;
}
