/*
 * Attachment files, opened the one safe way: a letter's Attachment header names a file
 * inside the letter's own folder, never an absolute path, never through "..", never through
 * a symlink that leads out of the folder. A template is someone else's text: without this,
 * "Attachment: /etc/shadow" would mail a local file to a mission. Every reader (draft's
 * copy, check, preview, send) opens through mail_attachment_open() and reads from that one
 * descriptor, so what was checked is what is read (no check-then-open race).
 */
#ifndef DEMARCHE_MAIL_ATTACHMENT_H
#define DEMARCHE_MAIL_ATTACHMENT_H

#include <stddef.h>
#include <sys/stat.h>

#include "base/error.h"

struct mail_attachment;

/* The largest attachment read, in bytes (what mail providers take: 25 MB, before base64). */
#define MAIL_ATTACHMENT_MAX (25L * 1000 * 1000)

/*
 * The syntax check alone, for a header value known before rendering: rel must be a
 * non-empty relative path without a ".." component. Returns EX_OK, or EX_DATAERR with
 * *errstr saying why (no file name in it: the caller adds file and line).
 */
int mail_attachment_check_path(const char *rel, char **errstr);

/*
 * Opens rel for reading beneath the folder dir. Refused (EX_DATAERR, *errstr says why)
 * when rel fails mail_attachment_check_path(), when it resolves (through symlinks at any
 * level) outside dir, when a symlink is swapped in while it is being opened, or when it is
 * not a regular file (a FIFO, a device, a folder). Symlinks that stay inside dir are fine.
 * The walk from dir to the file is done with O_NOFOLLOW at every step along the resolved
 * path, so the descriptor is the file that was checked.
 * Returns EX_OK with *fd (the caller closes it) and *st (its fstat()); when resolved is
 * not NULL, *resolved gets the file's canonical path (the caller frees it). Otherwise *fd
 * is -1, and the code is EX_DATAERR (refused), EX_NOINPUT (no such file) or EX_IOERR.
 */
int mail_attachment_open(const char *dir, const char *rel, int *fd, struct stat *st,
                         char **resolved, char **errstr);

/*
 * Reads the open regular file fd to its end, refusing more than max bytes (EX_DATAERR).
 * Returns EX_OK with *data (NUL-terminated, the caller frees) and *len, or EX_IOERR. Does
 * not close fd.
 */
int mail_attachment_read(int fd, size_t max, char **data, size_t *len, char **errstr);

/*
 * mail_attachment_open() then mail_attachment_new() (see mail/compose.h) with rel's last
 * component as the file name: what check, preview and send attach. Returns EX_OK with *out
 * (free with mail_attachment_free()), or the codes of mail_attachment_open() and
 * mail_attachment_read(), with *errstr naming rel.
 */
int mail_attachment_load_in(const char *dir, const char *rel, struct mail_attachment **out,
                            char **errstr);

#endif
