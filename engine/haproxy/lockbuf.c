/*
 * lockbuf.c - locked, undumpable, wiped memory for key material (see
 * lockbuf.h).  Threat: keys reaching swap, core files or reused heap.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <hsmkeys/hsmkeys.h>
#include "lockbuf.h"

int fd_lockbuf_alloc(fd_lockbuf *b, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t map_len;
    void *p;

    memset(b, 0, sizeof *b);
    if (len == 0 || page <= 0) {
        errno = EINVAL;
        return -1;
    }
    map_len = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
    p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    if (mlock(p, map_len) != 0) {
        int e = errno;
        munmap(p, map_len);
        errno = e;
        return -1;
    }
    (void)madvise(p, map_len, MADV_DONTDUMP); /* best effort: also PR_SET_DUMPABLE=0 */
    b->p = p;
    b->len = len;
    b->map_len = map_len;
    return 0;
}

void fd_lockbuf_free(fd_lockbuf *b)
{
    if (b->p == NULL)
        return;
    hsmkeys_wipe(b->p, b->map_len);
    (void)munlock(b->p, b->map_len);
    munmap(b->p, b->map_len);
    memset(b, 0, sizeof *b);
}
