/* draft's params files: a commented skeleton printed by --print-params, read back by --params. */
#include "letter/params.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xalloc.h"

/* 1 when the Params header of lang's file names param. */
static int uses(const struct letter *l, const char *lang, const char *param)
{
	const char *h = letter_header_source(l, lang, "Params");
	size_t n = strlen(param);

	for (const char *p = h; p && (p = strstr(p, param)); p += n) {
		int start = p == h || p[-1] == ',' || isspace((unsigned char)p[-1]);
		int end = !p[n] || p[n] == ',' || isspace((unsigned char)p[n]);
		if (start && end)
			return 1;
	}
	return 0;
}

void params_skeleton(const struct letter *l, const char *id, json_t *example, FILE *fp)
{
	size_t np, nl;
	const char *const *params = letter_params(l, &np);
	const char *const *langs = letter_languages(l, &nl);

	fprintf(fp,
	        "// Params of the template %s: edit the values, then\n"
	        "//   demarche draft %s -o DIR --params THIS_FILE\n"
	        "// Values shown are %s.\n"
	        "// Lines starting with // are comments.\n"
	        "// A list (organisations) can come from a sign-on sheet instead: --signatories "
	        "FILE.csv.\n"
	        "{\n",
	        id, id, example ? "the original letter's (original.json): replace each" : "empty");
	for (size_t i = 0; i < np; i++) {
		json_t *v = example ? json_object_get(example, params[i]) : NULL;
		char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		fputs("  // in", fp);
		for (size_t k = 0; k < nl; k++)
			if (uses(l, langs[k], params[i]))
				fprintf(fp, " %s.md", langs[k]);
		fputc('\n', fp);
		fprintf(fp, "  \"%s\": %s%s\n", params[i], s ? s : "\"\"", i + 1 < np ? "," : "");
		free(s);
	}
	fputs("}\n", fp);
}

json_t *params_load(const char *path, json_error_t *err)
{
	char *text = NULL;
	size_t len;
	struct buf b = BUF_INIT;
	json_t *v;

	FILE *fp = fopen(path, "r");

	memset(err, 0, sizeof(*err));
	if (!fp || (fclose(fp), read_file(path, &text, &len) != 0)) {
		int e = fp ? EIO : errno;
		snprintf(err->text, sizeof err->text, "%s", strerror(e));
		errno = e;
		return NULL;
	}
	/* A comment line becomes an empty line: the parser's line numbers stay the file's. */
	for (const char *p = text; *p;) {
		size_t l = strcspn(p, "\n");
		size_t k = strspn(p, " \t");
		if (!(k + 1 < l && p[k] == '/' && p[k + 1] == '/'))
			buf_add(&b, p, l);
		if (p[l] == '\n')
			buf_addc(&b, '\n');
		p += l + (p[l] == '\n');
	}
	free(text);
	v = json_loads(buf_str(&b), 0, err);
	buf_free(&b);
	errno = 0;
	return v;
}
