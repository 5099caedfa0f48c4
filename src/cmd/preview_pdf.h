/* preview --format pdf (src/cmd/preview_pdf.c). */
#ifndef DEMARCHE_PREVIEW_PDF_H
#define DEMARCHE_PREVIEW_PDF_H

#include <time.h>

#include "campaign/merge.h"
#include "cmd/cmd.h"

/*
 * Validates as check does, then writes each selected mission's letter as a PDF,
 * OUT/CAMPAIGN-KEY.pdf (campaign/document.h), never over an existing file. Returns EX_OK or
 * the code, having printed the problem.
 */
int preview_pdf(struct app *app, struct merge *m, const char *out, time_t date);

#endif
