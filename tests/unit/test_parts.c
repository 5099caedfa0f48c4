/*
 * Unit tests of the letter parts (src/roster/parts.c) through the real path: a roster row's
 * context rendered into asp-session: an ambassador, a chargé d'affaires and the Cook Islands
 * row (a Secretary of Foreign Affairs), each in en, fr and es, get the right reference, date
 * line, inside address and salutation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "roster/parts.h"
#include "roster/roster.h"

static const char *srcdir(void)
{
	const char *s = getenv("SRCDIR");
	return s && *s ? s : ".";
}

/* One case: a roster row and what its letter must say. */
struct want {
	const char *key, *lang;
	const char *csv; /* honorific,name,title,mission,city */
	const char *reference, *date_line, *salutation;
	const char *address[5]; /* the lines, in order */
	const char *form;       /* the form of address in the body (fr/es), or NULL */
};

#define MISSION_EN "Permanent Mission of Poland to the United Nations"
#define MISSION_FR "Mission permanente de la Pologne auprès de l'Organisation des Nations Unies"
#define MISSION_ES "Misión Permanente de Polonia ante las Naciones Unidas"
#define COK_MFA    "Ministry of Foreign Affairs and Immigration of the Cook Islands"
#define COK_NAME   "the Secretary of Foreign Affairs and Immigration of the Cook Islands"

static const struct want wants[] = {
    {"AME",
     "en",
     "H.E. Mr.,Jan Kowalski,Ambassador and Permanent Representative," MISSION_EN ",New York",
     "Ref. CICC/asp22-priorities/AME",
     "The Hague/New York, 20 November 2025",
     "Your Excellency,",
     {"H.E. Mr. Jan Kowalski", "Ambassador and Permanent Representative", MISSION_EN, "New York"},
     NULL},
    {"AMF",
     "fr",
     "S.E. M.,Jan Kowalski,Ambassadeur et Représentant permanent," MISSION_FR ",New York",
     "Réf. CICC/asp22-priorities/AMF",
     "La Haye/New York, le 20 novembre 2025",
     "Excellence,",
     {"S.E. M. Jan Kowalski", "Ambassadeur et Représentant permanent", MISSION_FR, "New York"},
     "m'adresser à Votre Excellence"},
    {"AMS",
     "es",
     "Excmo. Sr.,Jan Kowalski,Embajador y Representante Permanente," MISSION_ES ",Nueva York",
     "Ref. CICC/asp22-priorities/AMS",
     "La Haya/Nueva York, 20 de noviembre de 2025",
     "Excelentísimo Señor:",
     {"Excmo. Sr. Jan Kowalski", "Embajador y Representante Permanente", MISSION_ES, "Nueva York"},
     "dirigirme a Vuestra Excelencia"},
    {"CDE",
     "en",
     "Ms.,Anna Nowak,Chargé d'affaires a.i.," MISSION_EN ",New York",
     "Ref. CICC/asp22-priorities/CDE",
     "The Hague/New York, 20 November 2025",
     "Dear Madam Chargé d'affaires,",
     {"Ms. Anna Nowak", "Chargé d'affaires a.i.", MISSION_EN, "New York"},
     NULL},
    {"CDF",
     "fr",
     "Mme,Anna Nowak,Chargée d'affaires par intérim," MISSION_FR ",New York",
     "Réf. CICC/asp22-priorities/CDF",
     "La Haye/New York, le 20 novembre 2025",
     "Madame la Chargée d'affaires,",
     {"Mme Anna Nowak", "Chargée d'affaires par intérim", MISSION_FR, "New York"},
     "m'adresser à vous"},
    {"CDS",
     "es",
     "Sra.,Anna Nowak,Encargada de Negocios a.i.," MISSION_ES ",Nueva York",
     "Ref. CICC/asp22-priorities/CDS",
     "La Haya/Nueva York, 20 de noviembre de 2025",
     "Señora Encargada de Negocios:",
     {"Sra. Anna Nowak", "Encargada de Negocios a.i.", MISSION_ES, "Nueva York"},
     "dirigirme a usted"},
    /* The Cook Islands row as recipients/missions.example.csv has it, in each language. */
    {"COE",
     "en",
     "," COK_NAME ",Secretary of Foreign Affairs and Immigration," COK_MFA ",Avarua",
     "Ref. CICC/asp22-priorities/COE",
     "The Hague/New York, 20 November 2025",
     "Dear Secretary,",
     {"The Secretary of Foreign Affairs and Immigration of the Cook Islands", COK_MFA, "Avarua"},
     NULL},
    {"COF",
     "fr",
     ",le Secrétaire aux affaires étrangères et à l'immigration des Îles Cook,Secrétaire aux "
     "affaires étrangères et à l'immigration,Ministère des affaires étrangères et de "
     "l'immigration des Îles Cook,Avarua",
     "Réf. CICC/asp22-priorities/COF",
     "La Haye/New York, le 20 novembre 2025",
     "Madame, Monsieur,",
     {"Le Secrétaire aux affaires étrangères et à l'immigration des Îles Cook",
      "Ministère des affaires étrangères et de l'immigration des Îles Cook", "Avarua"},
     "m'adresser à vous"},
    {"COS",
     "es",
     ",el Secretario de Relaciones Exteriores e Inmigración de las Islas Cook,Secretario de "
     "Relaciones Exteriores e Inmigración,Ministerio de Relaciones Exteriores e Inmigración de "
     "las Islas Cook,Avarua",
     "Ref. CICC/asp22-priorities/COS",
     "La Haya/Nueva York, 20 de noviembre de 2025",
     "Señora, Señor:",
     {"El Secretario de Relaciones Exteriores e Inmigración de las Islas Cook",
      "Ministerio de Relaciones Exteriores e Inmigración de las Islas Cook", "Avarua"},
     "dirigirme a usted"},
};
#define NWANTS (sizeof(wants) / sizeof(wants[0]))

/*
 * The index of the line of text equal to line, or -1. The text part wraps a long line ended
 * by a hard break onto lines indented by two: those are joined back (and count as one).
 */
static long line_at(const char *text, const char *line)
{
	long i = 0;

	for (const char *p = text; *p; i++) {
		char got[512];
		size_t len = strcspn(p, "\n");
		if (len >= sizeof got)
			return -1;
		memcpy(got, p, len);
		got[len] = '\0';
		p += len + (p[len] == '\n');
		while (p[0] == ' ' && p[1] == ' ' && p[2] != ' ') {
			size_t l = strcspn(p + 2, "\n");
			if (strlen(got) + 1 + l >= sizeof got)
				return -1;
			strcat(got, " ");
			strncat(got, p + 2, l);
			p += 2 + l + (p[2 + l] == '\n');
		}
		if (!strcmp(got, line))
			return i;
	}
	return -1;
}

struct run {
	struct letter *letter;
	json_t *params;
	size_t seen;
};

static int check_row(void *user, const struct roster_row *row)
{
	struct run *r = user;
	const struct want *w = NULL;
	json_t *ctx = roster_context(row);
	struct letter_out out = {0};
	struct diags d = DIAGS_INIT;
	long at, sal, date, ref;
	int rc;

	for (size_t i = 0; i < NWANTS; i++)
		if (!strcmp(wants[i].key, roster_key(row)))
			w = &wants[i];
	assert_non_null(w);
	json_object_update_missing(ctx, r->params);
	json_object_set_new(ctx, "campaign", json_string("asp22-priorities")); /* as merge does */
	rc = letter_render(r->letter, w->lang, ctx, &out, &d);
	if (rc != EX_OK)
		diags_print(&d, stderr);
	assert_int_equal(rc, EX_OK);
	assert_string_equal(out.language, w->lang);
	ref = line_at(out.text, w->reference);
	date = line_at(out.text, w->date_line);
	sal = line_at(out.text, w->salutation);
	if (ref < 0 || date < 0 || sal < 0)
		fail_msg("%s: reference %ld, date %ld, salutation %ld in:\n%.900s", w->key, ref,
		         date, sal, out.text);
	assert_true(ref < date);
	/* The inside address: its lines in order, right after the date line's paragraph and
	 * right before the salutation's, nothing else between them. */
	at = date + 1;
	for (size_t i = 0; i < 5 && w->address[i]; i++) {
		long l = line_at(out.text, w->address[i]);
		if (l < 0)
			fail_msg("%s: no address line '%s' in:\n%.900s", w->key, w->address[i],
			         out.text);
		assert_int_equal(l, i == 0 ? date + 2 : at); /* a blank line after the date */
		at = l + 1;
	}
	assert_int_equal(sal, at + 1);
	if (w->form)
		assert_non_null(strstr(out.text, w->form));
	r->seen++;
	letter_out_free(&out);
	diags_free(&d);
	json_decref(ctx);
	return 0;
}

static void test_parts_rendered(void **state)
{
	char path[] = "/tmp/test_parts_XXXXXX.csv";
	char *tpl = xasprintf("%s/templates/asp-session", srcdir());
	char *layout = xasprintf("%s/templates/_layout", srcdir());
	char *pj = xasprintf("%s/templates/asp-session/original.json", srcdir());
	struct diags d = DIAGS_INIT;
	struct roster_opts o = {.date = "2025-11-20"};
	struct roster *ro = NULL;
	struct run r = {0};
	json_error_t jerr;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemps(path, 4);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("iso3,email,language,honorific,name,title,mission,city\n", f);
	for (size_t i = 0; i < NWANTS; i++)
		fprintf(f, "%s,%s@missions.example,%s,%s\n", wants[i].key, wants[i].key,
		        wants[i].lang, wants[i].csv);
	fclose(f);
	assert_int_equal(letter_load(tpl, layout, &r.letter, &d), EX_OK);
	r.params = json_load_file(pj, 0, &jerr);
	assert_non_null(r.params);
	o.path = path;
	assert_int_equal(roster_open(&o, &ro, &d), EX_OK);
	if (roster_each(ro, check_row, &r, &d) != EX_OK)
		diags_print(&d, stderr);
	assert_int_equal(d.errors, 0);
	assert_int_equal(r.seen, NWANTS);
	roster_free(ro);
	json_decref(r.params);
	letter_free(r.letter);
	diags_free(&d);
	unlink(path);
	free(tpl);
	free(layout);
	free(pj);
}

static void test_dates(void **state)
{
	static const struct {
		const char *lang, *iso, *want;
	} cases[] = {
	    {"en", "2025-11-20", "20 November 2025"},
	    {"fr", "2025-11-20", "20 novembre 2025"},
	    {"fr", "2025-08-01", "1er août 2025"},
	    {"es", "2025-11-20", "20 de noviembre de 2025"},
	    {"pt", "2025-03-02", "2 de março de 2025"},
	    {"de", "2024-02-29", "29 February 2024"},
	    {"en", "2025-02-29", NULL},
	    {"en", "2025-13-01", NULL},
	    {"en", "20251120", NULL},
	    {"en", "2025-11-20x", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = parts_date(cases[i].lang, cases[i].iso);
		if (cases[i].want)
			assert_string_equal(s, cases[i].want);
		else
			assert_null(s);
		free(s);
	}
}

static void test_excellency(void **state)
{
	(void)state;
	assert_true(parts_excellency("H.E.", "Permanent Representative"));
	assert_true(parts_excellency("", "Minister for Foreign Affairs"));
	assert_true(parts_excellency("S.E.", "Observateur permanent"));
	assert_true(parts_excellency("H.E.", NULL)); /* no title: a head of mission, as before */
	assert_false(parts_excellency("H.E.", "Chargé d'affaires a.i."));
	assert_false(parts_excellency("H.E.", "Deputy Permanent Representative"));
	assert_false(parts_excellency("Mr.", "Minister-Counsellor"));
	assert_false(parts_excellency("", "Secretary of Foreign Affairs and Immigration"));
	assert_false(parts_excellency("Sr.", "Encargado de Negocios a.i."));
}

static void test_salutations(void **state)
{
	static const struct {
		const char *lang, *hon, *title, *want;
	} cases[] = {
	    {"en", "Mr.", "Secretary of Foreign Affairs", "Dear Mr. Secretary"},
	    {"en", "", "Secretary of Foreign Affairs", "Dear Secretary"},
	    {"en", "Ms.", "", "Your Excellency"},
	    {"fr", "M.", "Secrétaire général", "Monsieur le Secrétaire général"},
	    {"fr", "Mme", "Ambassadrice", "Excellence"},
	    {"fr", "Mme", "Adjointe au Représentant permanent", "Madame l'Adjointe"},
	    {"es", "Sr.", "Encargado de Negocios a.i.", "Señor Encargado de Negocios"},
	    {"es", "Sra.", "Representante Permanente", "Excelentísima Señora"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = parts_salutation(cases[i].lang, cases[i].hon, "X", cases[i].title);
		assert_string_equal(s, cases[i].want);
		free(s);
	}
}

static void test_inside_address(void **state)
{
	json_t *a;

	(void)state;
	/* The title is left out when the name says it; blank fields make no line. */
	a = parts_inside_address("H.E.", "the Permanent Representative of Kenya",
	                         "Permanent Representative", "Permanent Mission of Kenya", "  ");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "line")),
	                    "H.E. the Permanent Representative of Kenya");
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "line")),
	                    "Permanent Mission of Kenya");
	json_decref(a);
	a = parts_inside_address(NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parts_rendered), cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_excellency),     cmocka_unit_test(test_salutations),
	    cmocka_unit_test(test_inside_address),
	};
	return cmocka_run_group_tests_name("parts", tests, NULL, NULL);
}
