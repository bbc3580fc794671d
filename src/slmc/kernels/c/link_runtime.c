/* The links of a partitioned model (slmc compile --chips N): the only code the generated C needs
 * beyond its kernels. The chips form the reduction tree of plan/partition.py: at level l the chips
 * that are multiples of fan_in^l form consecutive groups of fan_in and the first of a group is the
 * parent of the others. On the host each chip is a process and each tree edge a Unix domain
 * socket in DIR (DIR/chip<k>.sock is where chip k's children connect). Every byte sent is counted
 * per peer, so a run reports its traffic per link. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINK_MAX_CHIPS 256
#define LINK_WAIT_MS 60000

static int link_chip, link_n = 1, link_parent = -1, link_parent_fd = -1, link_n_children;
static int link_child[LINK_MAX_CHIPS], link_child_fd[LINK_MAX_CHIPS];
static unsigned long long link_sent[LINK_MAX_CHIPS];

void slmc_link_fail(const char *what) {
    fprintf(stderr, "E chip %d: link failure in %s (%s)\n", link_chip, what, errno ? strerror(errno) : "peer closed");
    exit(3);
}

static void link_sleep_ms(int ms) {
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

static void link_addr(struct sockaddr_un *a, const char *dir, int chip) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (snprintf(a->sun_path, sizeof a->sun_path, "%s/chip%d.sock", dir, chip) >= (int)sizeof a->sun_path) {
        errno = ENAMETOOLONG;
        slmc_link_fail("socket path");
    }
}

static void link_write(int peer, int fd, const void *buf, size_t bytes) {
    const char *p = buf;
    size_t left = bytes;
    while (left) {
        ssize_t k = send(fd, p, left, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) slmc_link_fail("send");
        p += k;
        left -= (size_t)k;
    }
    link_sent[peer] += bytes;
}

/* 1: read `bytes`; 0: the peer closed before the first byte (how chip 0 ends a run) */
static int link_read(int fd, void *buf, size_t bytes) {
    char *p = buf;
    size_t left = bytes;
    while (left) {
        ssize_t k = recv(fd, p, left, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) errno = 0; /* the peer closed: slmc_link_fail then says so */
        if (k == 0 && left == bytes) return 0;
        if (k <= 0) slmc_link_fail("recv");
        p += k;
        left -= (size_t)k;
    }
    return 1;
}

/* Connects this chip to its parent and children; every chip listens before it connects upwards,
 * so the chips may start in any order. */
int slmc_link_open(int chip, int n_chips, int fan_in, const char *dir) {
    if (n_chips > LINK_MAX_CHIPS || chip < 0 || chip >= n_chips || fan_in < 2) { errno = EINVAL; slmc_link_fail("open"); }
    link_chip = chip;
    link_n = n_chips;
    for (long stride = 1; stride < n_chips; stride *= fan_in)
        for (long p = 0; p < n_chips; p += stride * fan_in)
            for (int j = 1; j < fan_in && p + j * stride < n_chips; j++) {
                if (p + j * stride == chip) link_parent = (int)p;
                if (p == chip) link_child[link_n_children++] = (int)(p + j * stride);
            }
    struct sockaddr_un mine, a;
    int lfd = -1;
    if (link_n_children) {
        link_addr(&mine, dir, chip);
        unlink(mine.sun_path);
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&mine, sizeof mine) || listen(lfd, link_n_children))
            slmc_link_fail("listen");
    }
    if (link_parent >= 0) {
        link_addr(&a, dir, link_parent);
        for (int waited = 0;; waited += 2) {
            link_parent_fd = socket(AF_UNIX, SOCK_STREAM, 0);
            if (link_parent_fd < 0) slmc_link_fail("socket");
            if (!connect(link_parent_fd, (struct sockaddr *)&a, sizeof a)) break;
            close(link_parent_fd);
            if (waited > LINK_WAIT_MS) slmc_link_fail("connect");
            link_sleep_ms(2);
        }
        int32_t me = chip; /* the handshake is not counted: it is set-up, not traffic per token */
        if (send(link_parent_fd, &me, sizeof me, MSG_NOSIGNAL) != (ssize_t)sizeof me) slmc_link_fail("handshake");
    }
    for (int i = 0; i < link_n_children; i++) link_child_fd[i] = -1;
    for (int got = 0; got < link_n_children; got++) {
        struct pollfd pf = {lfd, POLLIN, 0};
        if (poll(&pf, 1, LINK_WAIT_MS) != 1) { errno = ETIMEDOUT; slmc_link_fail("accept"); }
        int fd = accept(lfd, NULL, NULL);
        int32_t who = -1;
        if (fd < 0 || !link_read(fd, &who, sizeof who)) slmc_link_fail("accept");
        for (int i = 0; i < link_n_children; i++)
            if (link_child[i] == who) link_child_fd[i] = fd;
    }
    if (lfd >= 0) {
        close(lfd);
        unlink(mine.sun_path); /* every child is connected: the name is no longer needed */
    }
    return 0;
}

/* The tree as the kernels see it: this chip's parent (-1 for chip 0) and its i-th child (-1 past the last). */
int slmc_link_parent(void) { return link_parent; }
int slmc_link_child(int i) { return i < link_n_children ? link_child[i] : -1; }

static int link_fd(int peer) {
    if (peer == link_parent) return link_parent_fd;
    for (int i = 0; i < link_n_children; i++)
        if (link_child[i] == peer) return link_child_fd[i];
    errno = EINVAL;
    slmc_link_fail("no link to that chip");
    return -1;
}

/* One message to or from a neighbour in the tree. */
void slmc_link_send(int peer, const void *buf, size_t bytes) { link_write(peer, link_fd(peer), buf, bytes); }
void slmc_link_recv(int peer, void *buf, size_t bytes) {
    if (!link_read(link_fd(peer), buf, bytes)) slmc_link_fail("recv");
}

/* Up the tree: children's partials are combined in the plan's order (op 0: sum, 1: max), then the
 * result goes to the parent. tmp holds one child's message. */
void slmc_link_reduce(float *buf, float *tmp, size_t count, int op) {
    for (int i = 0; i < link_n_children; i++) {
        if (!link_read(link_child_fd[i], tmp, count * sizeof(float))) slmc_link_fail("reduce");
        if (op == 0)
            for (size_t j = 0; j < count; j++) buf[j] = buf[j] + tmp[j];
        else
            for (size_t j = 0; j < count; j++) buf[j] = tmp[j] > buf[j] ? tmp[j] : buf[j];
    }
    if (link_parent >= 0) link_write(link_parent, link_parent_fd, buf, count * sizeof(float));
}

/* The same sum over int64 partials (-q int8): exact, so the order of the tree does not matter. */
void slmc_link_reduce_i64(int64_t *buf, int64_t *tmp, size_t count) {
    for (int i = 0; i < link_n_children; i++) {
        if (!link_read(link_child_fd[i], tmp, count * sizeof(int64_t))) slmc_link_fail("reduce");
        for (size_t j = 0; j < count; j++) buf[j] += tmp[j];
    }
    if (link_parent >= 0) link_write(link_parent, link_parent_fd, buf, count * sizeof(int64_t));
}

/* Down the tree from chip 0: returns 0 when chip 0 has closed the links instead (end of the run). */
int slmc_link_broadcast(void *buf, size_t bytes) {
    if (link_parent >= 0 && !link_read(link_parent_fd, buf, bytes)) return 0;
    for (int i = link_n_children - 1; i >= 0; i--) link_write(link_child[i], link_child_fd[i], buf, bytes);
    return 1;
}

/* Closes the links (children see the end of the run) and prints the bytes sent to each peer. */
void slmc_link_close(void) {
    for (int i = 0; i < link_n_children; i++) close(link_child_fd[i]);
    if (link_parent_fd >= 0) close(link_parent_fd);
    for (int p = 0; p < link_n; p++)
        if (link_sent[p]) printf("S sent_to_%d %llu\n", p, link_sent[p]);
    fflush(stdout);
}
