/*
 * Files opened the one safe way, inside a given folder: a relative path, never absolute,
 * never through "..", never through a symlink that leads out of the folder; the descriptor
 * opened is the file that was checked (no check-then-open race). Letters' attachments
 * (mail/attachment.h) and draft's copies go through here: a template is someone else's text,
 * and "Attachment: /etc/shadow" must not mail a local file to a mission.
 */
#ifndef DEMARCHE_CONFINE_H
#define DEMARCHE_CONFINE_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * The syntax check alone, for a header value known before rendering: rel must be a
 * non-empty relative path without a ".." component. Returns EX_OK, or EX_DATAERR with
 * *errstr saying why (no file name in it: the caller adds file and line).
 */
int confine_check_path(const char *rel, char **errstr);

/*
 * Opens rel for reading beneath the folder dir. Refused (EX_DATAERR, *errstr says why)
 * when rel fails confine_check_path(), when it resolves (through symlinks at any
 * level) outside dir, when a symlink is swapped in while it is being opened, or when it is
 * not a regular file (a FIFO, a device, a folder). Symlinks that stay inside dir are fine.
 * The walk from dir to the file is done with O_NOFOLLOW at every step along the resolved
 * path, so the descriptor is the file that was checked.
 * Returns EX_OK with *fd (the caller closes it) and *st (its fstat()); when resolved is
 * not NULL, *resolved gets the file's canonical path (the caller frees it). Otherwise *fd
 * is -1, and the code is EX_DATAERR (refused), EX_NOINPUT (no such file) or EX_IOERR.
 */
int confine_open(const char *dir, const char *rel, int *fd, struct stat *st, char **resolved,
                 char **errstr);

/*
 * Reads the open regular file fd to its end, refusing more than max bytes (EX_DATAERR).
 * Returns EX_OK with *data (NUL-terminated, the caller frees) and *len, or EX_IOERR. Does
 * not close fd.
 */
int confine_read(int fd, size_t max, char **data, size_t *len, char **errstr);

#endif
