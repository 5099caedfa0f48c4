/*
 * Writing files whole: every byte despite short writes and signals, and replacing a file
 * atomically (a reader sees the old file or the new one, never half of one).
 */
#ifndef DEMARCHE_FILE_H
#define DEMARCHE_FILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Writes data[0..len) to fd, going on after short writes and EINTR. Returns 0, or -1 with
 * errno set (ENOSPC, EIO, ...; EIO too if write() ever returns 0).
 */
int write_all(int fd, const void *data, size_t len);

/* The same at offset off (pwrite), for files read back while written (a spool). */
int file_pwrite_all(int fd, const void *data, size_t len, off_t off);

/* Reads exactly len bytes at offset off (pread), going on after short reads and EINTR.
 * Returns 0, or -1 (errno set; EIO at the end of the file). Thread-safe on one fd. */
int file_pread_all(int fd, void *data, size_t len, off_t off);

#define FILE_SYNC 1 /* file_write_atomic(): fsync the file and its folder (durable) */

/*
 * Replaces path with data[0..len) (mode, e.g. 0600, before the umask): writes a new file
 * next to it (O_EXCL, so nothing planted there is followed), then rename()s it over path.
 * A symlink at path is replaced, never followed. With FILE_SYNC the file and the folder are
 * fsync'ed, so after a crash path holds either version whole.
 * Returns EX_OK, or EX_CANTCREAT (cannot create the new file) / EX_IOERR (write, fsync or
 * rename failed) with *errstr (allocated, naming path and the reason); the new file is
 * then removed and path is untouched. Only a failed fsync of the folder (FILE_SYNC) comes
 * after the rename: EX_IOERR, path replaced but perhaps not yet durable.
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int flags,
                      char **errstr);

#endif
