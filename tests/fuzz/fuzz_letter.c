/*
 * libFuzzer target: the letter file reader (headers + Mustache/Markdown body): letter_load()
 * on a single-file letter, then the campaign id, a strict render with a fixed mission
 * context, and a draft (residual rendering) with fixed campaign params.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "base/error.h"
#include "fuzz_util.h"
#include "letter/letter.h"

static json_t *ctx, *params;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ctx = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:[{s:s},{s:s}], s:i}",
	                "state", "Kenya", "salutation", "Your Excellency", "name", "A. *B*", "cc",
	                "cc@missions.example", "raw", "<b>raw</b>", "escaped", "[x](y)", "session",
	                "24", "language", "en", "apic_party", 0, "party", 1, "items", "name", "one",
	                "name", "two", "year", 2024);
	params = json_pack("{s:s, s:s, s:s, s:s}", "session", "24", "session_ordinal",
	                   "twenty-fourth", "year", "2024", "venue", "The Hague");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = fuzz_write("letter.md", data, size);
	char *draft = xasprintf("%s/draft", fuzz_dir());
	struct letter *l = NULL;
	struct letter_out out = {0};
	struct diags d = DIAGS_INIT;
	char *id = NULL;
	size_t n;

	d.max = 20;
	if (letter_load(path, NULL, &l, &d) == EX_OK) {
		(void)letter_params(l, &n);
		(void)letter_languages(l, &n);
		(void)letter_header_source(l, "en", "Subject");
		if (letter_campaign_id(l, &id, &d) == EX_OK && !id)
			abort();
		if (letter_render(l, "fr", ctx, &out, &d) == EX_OK && (!out.text || !out.html))
			abort();
		letter_out_free(&out);
		mkdir(draft, 0700); /* kept between runs: drafts overwrite */
		(void)letter_draft(l, params, draft, &d);
	}
	letter_free(l);
	diags_free(&d);
	free(id);
	free(path);
	free(draft);
	return 0;
}
