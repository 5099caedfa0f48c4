/* libFuzzer target: report_parse(), the DSN / reply / auto-reply classifier of `bounces`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct report r;
	char *err = NULL;
	int rc = report_parse((const char *)data, size, &r, &err);

	/* The contract: 0 with at least one recipient for a DSN, else EX_DATAERR + a message. */
	if (rc == 0 && r.kind == REPORT_DSN && r.nrcpt == 0)
		abort();
	if (rc != 0 && !err)
		abort();
	for (size_t i = 0; rc == 0 && i < r.nrcpt; i++)
		if (!r.rcpt[i].final_recipient || !r.rcpt[i].action || !r.rcpt[i].status)
			abort();
	(void)report_kind_name(r.kind);
	report_free(&r);
	free(err);
	return 0;
}
