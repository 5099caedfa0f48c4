/*
 * Mustache templates (https://mustache.github.io/mustache.5.html; spec v1.4 modules
 * comments, delimiters, interpolation, inverted, partials, sections and inheritance).
 * Compile once into a tree, render many times against jansson contexts.
 *
 * Ownership: mustache_compile() gives a template the caller frees with mustache_free();
 * rendering never takes ownership of the context. mustache_free(NULL) is safe.
 */
#ifndef DEMARCHE_MUSTACHE_H
#define DEMARCHE_MUSTACHE_H

#include <jansson.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/error.h"

enum mustache_escape {
	MUSTACHE_ESCAPE_HTML,     /* the spec's: & < > " */
	MUSTACHE_ESCAPE_MARKDOWN, /* letters: a value cannot inject emphasis, links, headings */
	MUSTACHE_ESCAPE_NONE,
};

struct mustache_template;
struct mustache_partials;

/*
 * Finds the source of partial or parent NAME. Returns 0 with *src (allocated, the caller
 * frees it) and *len, or -1 when there is no such partial.
 */
typedef int (*mustache_loader_fn)(void *user, const char *name, char **src, size_t *len);

/* A cache of compiled partials shared by many renders; can't fail. */
struct mustache_partials *mustache_partials_new(mustache_loader_fn fn, void *user);
void mustache_partials_free(struct mustache_partials *p);

/*
 * Compiles src (len bytes, UTF-8). name is used in messages ("en.md"); first_line is the
 * line number of src's first line in that file (a letter's body starts below its headers).
 * Returns EX_OK, or EX_DATAERR with *errstr "NAME:LINE: unclosed section 'x'" (likewise
 * for unopened/mismatched sections, bad delimiters, unclosed tags, invalid UTF-8).
 */
int mustache_compile(const char *src, size_t len, const char *name, int first_line,
                     struct mustache_template **out, char **errstr);
void mustache_free(struct mustache_template *t);

/* The name given to mustache_compile() (a partial's: its name); owned by t. Can't fail. */
const char *mustache_name(const struct mustache_template *t);

/*
 * Calls fn for every section ({{#name}}, inverted 0) and inverted section ({{^name}},
 * inverted 1) of t, nested ones too, in source order, with the tag's name as written and
 * its line; partials and parents are not followed. For checks that read a letter's logic
 * (check's report of what a {{#fact}} leaves out). Can't fail.
 */
typedef void (*mustache_section_fn)(void *user, const char *name, long line, int inverted);
void mustache_sections(const struct mustache_template *t, mustache_section_fn fn, void *user);

/*
 * Calls fn for every name t looks up ({{x}}, {{{x}}}, {{&x}}, {{#x}}, {{^x}}, nested ones
 * too) with the tag's name as written ("a.b") and its line, in source order; partials and
 * parents are not followed. For check's warning about roster columns no letter uses.
 */
typedef void (*mustache_name_fn)(void *user, const char *name, long line);
void mustache_names(const struct mustache_template *t, mustache_name_fn fn, void *user);

/*
 * Appends s (len bytes) to out escaped as e, as a value is in a template; markdown escapes
 * it as if it started a line (the conservative choice). Can't fail.
 */
void mustache_escape(struct buf *out, enum mustache_escape e, const char *s, size_t len);

struct mustache_render_opts {
	enum mustache_escape escape;
	/* strict: a name missing from the context is an error (never an empty string) */
	int strict;
	/*
	 * residual: names whose first dotted part is not a key of the top-level context are
	 * written back as Mustache tags (sections keep their tags and render their insides the
	 * same way); partials and parents are expanded. draft uses it to fill campaign params
	 * and leave per-mission fields open.
	 */
	int residual;
	struct mustache_partials *partials; /* NULL: every partial is missing */
	/* Where problems go: in strict mode every missing name, each with file and line, all
	 * of them (rendering continues to the end); a partial that is missing or fails to
	 * compile. Must not be NULL when strict is set. */
	struct diags *diags;
};

/*
 * Renders t with ctx (any jansson value; the bottom of the context stack), appending to out.
 * Returns EX_OK, or EX_DATAERR when problems were added to opts->diags (strict mode: missing
 * names; any mode: a partial that does not compile). Non-strict: missing names render empty,
 * missing partials render empty (spec behaviour).
 *
 * Details the spec leaves open: false, null, [], "" (a blank roster cell) and a missing name
 * are falsy; 0 is truthy. Numbers print as JSON does (85, 1.21, never 2.0). Strict mode also
 * reports a variable whose value is null ("null variable 'x'"), never a section set to
 * false/[]/"". Problems inside a partial carry the partial's name (as passed to the loader)
 * as their file. Residual mode: a name inside a section that is written back is filled now
 * when the current context has it; values and text that hold "{{" are written so that they
 * stay text when the result is compiled again. Partials and parents nested more than 100
 * deep are a problem (endless recursion), not a crash.
 */
int mustache_render(const struct mustache_template *t, json_t *ctx,
                    const struct mustache_render_opts *opts, struct buf *out);

#endif
