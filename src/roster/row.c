/* A row's values and its letter context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strutil.h"
#include "base/xalloc.h"
#include "roster/parts.h"
#include "roster/roster_int.h"

const char *roster_salutation(const char *lang, const char *honorific, const char *name)
{
	static const char *const male[] = {"mr",    "mr.",      "sr",  "sr.",   "señor",
	                                   "senor", "sir",      "don", "excmo", "excmo.",
	                                   "m.",    "monsieur", NULL};
	static const char *const female[] = {
	    "ms",     "ms.", "mrs",  "mrs.", "sra",  "sra.", "señora", "senora", "madam",
	    "madame", "mme", "mme.", "dame", "doña", "dona", "excma",  "excma.", NULL};
	char first[32] = "";

	if (!lang || !strcasecmp(lang, "en"))
		return "Your Excellency";
	if (!strcasecmp(lang, "fr"))
		return "Excellence";
	if (strcasecmp(lang, "es"))
		return NULL;
	/* Only the honorific, or a title written before the name, tells; never guess from a
	 * first name. */
	if (name) {
		size_t n = strcspn(name, " \t");
		if (n < sizeof first) {
			memcpy(first, name, n);
			first[n] = '\0';
		}
	}
	if (parts_has_word(honorific, male) || parts_has_word(first, male))
		return "Excelentísimo Señor";
	if (parts_has_word(honorific, female) || parts_has_word(first, female))
		return "Excelentísima Señora";
	return "Excelencia";
}

/* The raw value of col: the roster's, else a joined table's; NULL when neither has it. */
static const char *raw_get(const struct roster_row *row, const char *col)
{
	const struct roster *r = row->r;
	size_t i = rs_col_index(r->cols, r->ncols, col);

	if (i != NONE)
		return row->v[i];
	for (size_t t = 0; t < r->ntables; t++) {
		i = rs_col_index(r->tables[t].names, r->tables[t].ncols, col);
		if (i != NONE)
			return row->joined[t] ? row->joined[t][i] : NULL;
	}
	return NULL;
}

const char *roster_get(const struct roster_row *row, const char *col)
{
	const char *v;

	if (str_ieq(col, "language"))
		return row->r->langs[row->lang];
	v = raw_get(row, col);
	if (str_ieq(col, "salutation") && (!v || rs_is_blank(v)))
		return row->salutation;
	return v;
}

const char *roster_key(const struct roster_row *row)
{
	return row->v[row->r->keycol];
}

const char *roster_language(const struct roster_row *row)
{
	return row->r->langs[row->lang];
}

long roster_row_line(const struct roster_row *row)
{
	return row->line;
}

static json_t *json_value(const char *s)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "true"))
		return json_true();
	if (!strcasecmp(s, "no") || !strcasecmp(s, "false"))
		return json_false();
	return json_string(s);
}

/*
 * A facts table's part of the context: for each fact column X, X (true only for yes: a
 * {{#X}} section can assert nothing unconfirmed), X_status (yes, no or unknown) and
 * X_known; the number of States Parties on the sending date; and the state's names in the
 * row's language (name_LANG, formal_LANG) as state_name and state_formal.
 */
static void add_facts(const struct roster_row *row, json_t *o)
{
	const struct roster *r = row->r;
	const char *lang = r->langs[row->lang], *v;
	char col[64];
	int counted = 0;

	for (size_t t = 0; t < r->ntables; t++) {
		const struct table *tb = &r->tables[t];
		if (!tb->as_of)
			continue;
		if (!counted) {
			json_object_set_new(o, "states_parties_count",
			                    json_integer((json_int_t)tb->parties));
			counted = 1;
		}
		if (!row->joined[t])
			continue;
		for (size_t c = 0; c < tb->ncols; c++) {
			char *name;
			if (!tb->fact[c] || rs_fact_problem(row->joined[t][c]))
				continue;
			v = row->joined[t][c];
			json_object_set_new(o, tb->names[c], json_boolean(!strcasecmp(v, "yes")));
			name = xasprintf("%s_status", tb->names[c]);
			json_object_set_new(o, name,
			                    json_string(!strcasecmp(v, "yes")  ? "yes"
			                                : !strcasecmp(v, "no") ? "no"
			                                                       : "unknown"));
			free(name);
			name = xasprintf("%s_known", tb->names[c]);
			json_object_set_new(o, name, json_boolean(strcasecmp(v, "unknown") != 0));
			free(name);
		}
	}
	snprintf(col, sizeof col, "name_%s", lang);
	if ((v = raw_get(row, col)) && !rs_is_blank(v))
		json_object_set_new(o, "state_name", json_string(v));
	snprintf(col, sizeof col, "formal_%s", lang);
	if ((v = raw_get(row, col)) && !rs_is_blank(v))
		json_object_set_new(o, "state_formal", json_string(v));
}

json_t *roster_context(const struct roster_row *row)
{
	return roster_context_in(row, NULL);
}

json_t *roster_context_in(const struct roster_row *row, const char *letter_lang)
{
	const struct roster *r = row->r;
	json_t *o = json_object();
	const char *sal;

	for (size_t i = 0; i < r->ncols; i++)
		if (!rs_is_blank(row->v[i]))
			json_object_set_new(o, r->cols[i], json_value(row->v[i]));
	for (size_t t = 0; t < r->ntables; t++) {
		const struct table *tb = &r->tables[t];
		if (!row->joined[t])
			continue;
		for (size_t c = 0; c < tb->ncols; c++)
			if (c != tb->jcol && tb->dup_src[c] == NONE &&
			    !rs_is_blank(row->joined[t][c]))
				json_object_set_new(o, tb->names[c], json_value(row->joined[t][c]));
	}
	add_facts(row, o);
	json_object_set_new(o, "language", json_string(r->langs[row->lang]));
	/* A salutation the row gives is kept; else parts_add() derives one from the honorific
	 * and title, with the letter parts the layout uses (inside address, date line). */
	sal = raw_get(row, "salutation");
	if (!sal || rs_is_blank(sal))
		json_object_del(o, "salutation");
	parts_add(o, letter_lang ? letter_lang : r->langs[row->lang], r->date, roster_key(row));
	return o;
}
