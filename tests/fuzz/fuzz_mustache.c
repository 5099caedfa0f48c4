/*
 * libFuzzer target: Mustache compile + render. Input: one flags byte (escape mode, strict,
 * residual), the template, a NUL, then the context as JSON: {"data": ..., "partials":
 * {"name": "source", ...}} (the spec's test shape), or any JSON value as the whole context.
 * In residual mode (draft) the output must compile again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "letter/mustache.h"

static json_t *partials_json;

static int loader(void *user, const char *name, char **src, size_t *len)
{
	json_t *v = json_object_get(partials_json, name);

	(void)user;
	if (!json_is_string(v))
		return -1;
	*len = json_string_length(v);
	*src = xmalloc(*len + 1);
	memcpy(*src, json_string_value(v), *len + 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *src, *nul;
	size_t len;
	json_t *root = NULL, *ctx;
	struct mustache_template *t = NULL, *again = NULL;
	struct mustache_partials *p = NULL;
	struct mustache_render_opts o = {0};
	struct diags d = DIAGS_INIT;
	struct buf out = BUF_INIT;
	char *err = NULL;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	src = (const char *)data + 1;
	nul = memchr(src, '\0', size - 1);
	len = nul ? (size_t)(nul - src) : size - 1;
	if (nul)
		root =
		    json_loadb(nul + 1, size - 1 - len - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!root)
		root = json_object();
	ctx = json_is_object(root) && json_object_get(root, "data") ? json_object_get(root, "data")
	                                                            : root;
	partials_json = json_object_get(root, "partials");

	d.max = 20;
	if (mustache_compile(src, len, "fuzz", 1, &t, &err) == EX_OK) {
		int rc;

		p = mustache_partials_new(loader, NULL);
		o.escape = (enum mustache_escape)(flags % 3);
		o.strict = flags >> 2 & 1;
		o.residual = flags >> 3 & 1;
		o.partials = flags >> 4 & 1 ? NULL : p;
		o.diags = &d;
		rc = mustache_render(t, ctx, &o, &out);
		if (rc != EX_OK && !d.errors)
			abort();
		if (rc == EX_OK && o.residual &&
		    mustache_compile(buf_str(&out), out.len, "again", 1, &again, &err) != EX_OK)
			abort(); /* draft wrote an appeal that does not compile */
		(void)mustache_name(t);
	} else if (!err) {
		abort();
	}
	mustache_free(again);
	mustache_free(t);
	mustache_partials_free(p);
	buf_free(&out);
	diags_free(&d);
	free(err);
	json_decref(root);
	return 0;
}
