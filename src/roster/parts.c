/* Letter parts from a roster row: date line, inside address, salutation (see parts.h). */
#include "roster/parts.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "roster/roster.h"

static const char *const months_en[] = {"January",   "February", "March",    "April",
                                        "May",       "June",     "July",     "August",
                                        "September", "October",  "November", "December"};
static const char *const months_fr[] = {"janvier",   "février", "mars",     "avril",
                                        "mai",       "juin",    "juillet",  "août",
                                        "septembre", "octobre", "novembre", "décembre"};
static const char *const months_es[] = {"enero",      "febrero", "marzo",     "abril",
                                        "mayo",       "junio",   "julio",     "agosto",
                                        "septiembre", "octubre", "noviembre", "diciembre"};
static const char *const months_pt[] = {"janeiro",  "fevereiro", "março",    "abril",
                                        "maio",     "junho",     "julho",    "agosto",
                                        "setembro", "outubro",   "novembro", "dezembro"};

static int leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

char *parts_date(const char *lang, const char *iso)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d, n = 0;

	if (!iso || strlen(iso) != 10 || sscanf(iso, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 ||
	    n != 10 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap(y)))
		return NULL;
	if (lang && !strcasecmp(lang, "fr"))
		return d == 1 ? xasprintf("1er %s %d", months_fr[m - 1], y)
		              : xasprintf("%d %s %d", d, months_fr[m - 1], y);
	if (lang && !strcasecmp(lang, "es"))
		return xasprintf("%d de %s de %d", d, months_es[m - 1], y);
	if (lang && !strcasecmp(lang, "pt"))
		return xasprintf("%d de %s de %d", d, months_pt[m - 1], y);
	return xasprintf("%d %s %d", d, months_en[m - 1], y);
}

static int blank(const char *s)
{
	if (!s)
		return 1;
	while (*s && isspace((unsigned char)*s))
		s++;
	return !*s;
}

/* 1 when s holds one of words as a whole word (ASCII case-insensitive; words may end in '.'). */
int parts_has_word(const char *s, const char *const *words)
{
	if (!s)
		return 0;
	while (*s) {
		char w[48];
		size_t n;
		while (*s && (isspace((unsigned char)*s) || *s == ','))
			s++;
		n = strcspn(s, " \t,");
		if (n && n < sizeof w) {
			memcpy(w, s, n);
			w[n] = '\0';
			for (size_t i = 0; words[i]; i++)
				if (!strcasecmp(w, words[i]))
					return 1;
		}
		s += n;
	}
	return 0;
}

/*
 * 1 when s holds one of needles (lower case), ASCII letters compared without case (the UTF-8
 * bytes of both compare as themselves, as strncasecmp() does): s is lowered once, then
 * searched with strstr() for each needle.
 */
static int contains_any(const char *s, const char *const *needles)
{
	char stack[256], *low;
	size_t n;
	int found = 0;

	if (!s)
		return 0;
	n = strlen(s);
	low = n < sizeof stack ? stack : xmalloc(n + 1);
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	for (size_t i = 0; needles[i] && !found; i++)
		found = strstr(low, needles[i]) != NULL;
	if (low != stack)
		free(low);
	return found;
}

/* strcasestr() for ASCII letters: s holds needle (any case). */
static int contains(const char *s, const char *needle)
{
	char *low = xstrdup(needle);
	const char *const one[] = {low, NULL};
	int found;

	for (char *p = low; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	found = contains_any(s, one);
	free(low);
	return found;
}

int parts_excellency(const char *honorific, const char *title)
{
	static const char *const ranks[] = {"ambassador",
	                                    "ambassadeur",
	                                    "ambassadrice",
	                                    "embajador",
	                                    "embajadora",
	                                    "embaixador",
	                                    "minister",
	                                    "ministre",
	                                    "ministro",
	                                    "ministra",
	                                    "permanent representative",
	                                    "représentant permanent",
	                                    "représentante permanente",
	                                    "representante permanente",
	                                    "permanent observer",
	                                    "observateur permanent",
	                                    "observadora permanente",
	                                    "observador permanente",
	                                    "high commissioner",
	                                    "haut-commissaire",
	                                    "alto comisionado",
	                                    "president",
	                                    "président",
	                                    "presidente",
	                                    NULL};
	static const char *const not_ranks[] = {
	    "chargé",     "charge d'affaires", "encargado",   "encargada", "deputy",
	    "adjoint",    "adjointe",          "alterno",     "alterna",   "counsellor",
	    "conseiller", "consejero",         "conselheiro", NULL};

	/* A roster of missions without titles addresses heads of mission, as before titles were
	 * read; the honorific then only tells the gender. */
	(void)honorific; /* kept in the signature: a roster may one day style by honorific */
	if (blank(title))
		return 1;
	return !contains_any(title, not_ranks) && contains_any(title, ranks);
}

/* 'm', 'f' or 0: only the honorific tells, never a first name. */
static int gender(const char *honorific)
{
	static const char *const male[] = {"mr",     "mr.",   "sr",     "sr.", "señor",
	                                   "senor",  "sir",   "don",    "m.",  "monsieur",
	                                   "excmo.", "excmo", "senhor", NULL};
	static const char *const female[] = {
	    "ms",     "ms.", "mrs",  "mrs.", "sra",  "sra.",  "señora", "senora",  "madam",
	    "madame", "mme", "mme.", "dame", "doña", "excma", "excma.", "senhora", NULL};

	if (parts_has_word(honorific, male))
		return 'm';
	if (parts_has_word(honorific, female))
		return 'f';
	return 0;
}

/* The title's head: "Secretary of Foreign Affairs" -> "Secretary"; a new string or NULL. */
static char *title_head(const char *title)
{
	static const char *const cuts[] = {
	    " of ", " for ", " to ",  " and ", " de ", " des ", " du ",        " del ",
	    " et ", " y ",   " aux ", " au ",  " à ",  " a.i.", " ad interim", " par intérim",
	    " da ", " do ",  " e ",   ",",     "(",    NULL};
	size_t n;

	if (blank(title))
		return NULL;
	while (isspace((unsigned char)*title))
		title++;
	n = strlen(title);
	for (size_t i = 0; cuts[i]; i++)
		for (const char *p = title; *p; p++)
			/* "Encargado de Negocios" is one title, as is "Chargé d'affaires". */
			if (!strncasecmp(p, cuts[i], strlen(cuts[i])) && (size_t)(p - title) < n &&
			    strncasecmp(p, " de Negocios", 12))
				n = (size_t)(p - title);
	while (n && isspace((unsigned char)title[n - 1]))
		n--;
	return n ? xstrndup(title, n) : NULL;
}

/* French elision: "l'" before a vowel or a mute h, else "le"/"la". */
static const char *fr_article(const char *head, int g)
{
	static const char *const vowels[] = {"a", "e", "i", "o", "u", "y", "h", "é",
	                                     "è", "ê", "à", "â", "î", "ô", "É", "È",
	                                     "Ê", "À", "Â", "Î", "Ô", NULL};
	for (size_t i = 0; vowels[i]; i++)
		if (!strncasecmp(head, vowels[i], strlen(vowels[i])))
			return "l'";
	return g == 'f' ? "la " : "le ";
}

char *parts_salutation(const char *lang, const char *honorific, const char *name, const char *title)
{
	char *head, *s;
	int g = gender(honorific);
	int fr = lang && !strcasecmp(lang, "fr"), es = lang && !strcasecmp(lang, "es");

	if (parts_excellency(honorific, title)) {
		const char *e = roster_salutation(lang, honorific, name);
		return xstrdup(e ? e : "Your Excellency");
	}
	head = title_head(title);
	if (fr)
		s = !head || !g ? xstrdup("Madame, Monsieur")
		                : xasprintf("%s %s%s", g == 'm' ? "Monsieur" : "Madame",
		                            fr_article(head, g), head);
	else if (es)
		s = !head || !g ? xstrdup("Señora, Señor")
		                : xasprintf("%s %s", g == 'm' ? "Señor" : "Señora", head);
	else if (!head)
		s = xstrdup(g == 'm' ? "Dear Sir" : g == 'f' ? "Dear Madam" : "Dear Sir or Madam");
	else
		s = xasprintf("Dear %s%s", g == 'm' ? "Mr. " : g == 'f' ? "Madam " : "", head);
	free(head);
	return s;
}

/* Appends s, trimmed, to a when it is not blank. */
static void add_line(json_t *a, const char *s)
{
	size_t n;

	if (blank(s))
		return;
	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	/* Objects, not strings: the layout says {{line}}, which draft leaves open, where {{.}}
	 * would be filled with draft's own context. */
	json_array_append_new(a, json_pack("{s:s%}", "line", s, n));
}

json_t *parts_inside_address(const char *honorific, const char *name, const char *title,
                             const char *mission, const char *city)
{
	json_t *a = json_array();
	char *first = NULL;

	if (!blank(honorific) && !blank(name))
		first = xasprintf("%s %s", honorific, name);
	else if (!blank(name)) {
		/* "the Secretary of ..." opens the address as "The Secretary of ...". */
		first = xstrdup(name);
		for (char *p = first; *p; p++)
			if (!isspace((unsigned char)*p)) {
				*p = (char)toupper((unsigned char)*p);
				break;
			}
	}
	add_line(a, first ? first : !blank(name) ? name : honorific);
	free(first);
	/* "the Permanent Representative of X" already says "Permanent Representative". */
	if (!(title && name && !blank(title) && contains(name, title)))
		add_line(a, title);
	add_line(a, mission);
	add_line(a, city);
	return a;
}

static const char *get(json_t *ctx, const char *k)
{
	return json_string_value(json_object_get(ctx, k));
}

void parts_add(json_t *ctx, const char *lang, const char *date, const char *key)
{
	const char *hon = get(ctx, "honorific"), *name = get(ctx, "name"),
	           *title = get(ctx, "title");
	char *s;

	if (key)
		json_object_set_new(ctx, "key", json_string(key));
	json_object_set_new(ctx, "ref_label",
	                    json_string(lang && !strcasecmp(lang, "fr") ? "Réf." : "Ref."));
	if ((s = parts_date(lang, date))) {
		json_object_set_new(ctx, "letter_date", json_string(s));
		free(s);
	}
	json_object_set_new(
	    ctx, "inside_address",
	    parts_inside_address(hon, name, title, get(ctx, "mission"), get(ctx, "city")));
	json_object_set_new(ctx, "excellency", json_boolean(parts_excellency(hon, title)));
	/* Other languages have no forms here: a template in them says its own. */
	if (blank(get(ctx, "salutation")) && (!lang || !strcasecmp(lang, "en") ||
	                                      !strcasecmp(lang, "fr") || !strcasecmp(lang, "es"))) {
		s = parts_salutation(lang, hon, name, title);
		json_object_set_new(ctx, "salutation", json_string(s));
		free(s);
	}
}
