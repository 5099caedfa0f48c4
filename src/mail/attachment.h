/*
 * Attachment files, opened the one safe way: a letter's Attachment header names a file
 * inside the letter's own folder, never an absolute path, never through "..", never through
 * a symlink that leads out of the folder. A template is someone else's text: without this,
 * "Attachment: /etc/shadow" would mail a local file to a mission. Every reader (draft's
 * copy, check, preview, send) opens through confine_open() and reads from that one
 * descriptor, so what was checked is what is read (no check-then-open race).
 */
#ifndef DEMARCHE_MAIL_ATTACHMENT_H
#define DEMARCHE_MAIL_ATTACHMENT_H

#include <stddef.h>
#include <sys/stat.h>

#include "base/confine.h"
#include "base/error.h"

struct mail_attachment;

/* The largest attachment read, in bytes (what mail providers take: 25 MB, before base64). */
#define MAIL_ATTACHMENT_MAX (25L * 1000 * 1000)

/*
 * confine_open() then mail_attachment_new() (see mail/compose.h) with rel's last
 * component as the file name: what check, preview and send attach. Returns EX_OK with *out
 * (free with mail_attachment_free()), or the codes of confine_open() and
 * confine_read(), with *errstr naming rel.
 */
int mail_attachment_load_in(const char *dir, const char *rel, struct mail_attachment **out,
                            char **errstr);

#endif
