/*
 * The generated name tables against p11-kit's own macros, and the SoftHSM
 * 2.6.1 compat tables against what its softhsm2-dump-file prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <p11-kit/pkcs11.h>

#include <tokenfs/names.h>

#include "names/names_table.h"

static void assert_name(const char *got, const char *want)
{
	assert_non_null(got);
	assert_string_equal(got, want);
}

static void test_values_match_header(void **state)
{
	(void)state;
	assert_name(tfs_name(TFS_NS_CKA, CKA_CLASS), "CKA_CLASS");
	assert_name(tfs_name(TFS_NS_CKA, CKA_VALUE), "CKA_VALUE");
	assert_name(tfs_name(TFS_NS_CKA, CKA_WRAP_TEMPLATE), "CKA_WRAP_TEMPLATE");
	assert_name(tfs_name(TFS_NS_CKA, CKA_ALLOWED_MECHANISMS),
		    "CKA_ALLOWED_MECHANISMS");
	assert_name(tfs_name(TFS_NS_CKO, CKO_PRIVATE_KEY), "CKO_PRIVATE_KEY");
	assert_name(tfs_name(TFS_NS_CKO, CKO_DATA), "CKO_DATA");
	assert_name(tfs_name(TFS_NS_CKK, CKK_AES), "CKK_AES");
	assert_name(tfs_name(TFS_NS_CKK, CKK_GENERIC_SECRET), "CKK_GENERIC_SECRET");
	assert_name(tfs_name(TFS_NS_CKK, CKK_EC_EDWARDS), "CKK_EC_EDWARDS");
	assert_name(tfs_name(TFS_NS_CKC, CKC_X_509), "CKC_X_509");
	assert_name(tfs_name(TFS_NS_CKM, CKM_AES_KEY_WRAP_PAD),
		    "CKM_AES_KEY_WRAP_PAD");
	assert_name(tfs_name(TFS_NS_CKM, CKM_RSA_PKCS_KEY_PAIR_GEN),
		    "CKM_RSA_PKCS_KEY_PAIR_GEN");
	assert_name(tfs_name(TFS_NS_CKH, CKH_CLOCK), "CKH_CLOCK");
}

/* The same number means different things in different name spaces. */
static void test_name_spaces_are_separate(void **state)
{
	(void)state;
	assert_name(tfs_name(TFS_NS_CKA, 3), "CKA_LABEL");
	assert_name(tfs_name(TFS_NS_CKO, 3), "CKO_PRIVATE_KEY");
	assert_name(tfs_name(TFS_NS_CKK, 3), "CKK_EC");
	assert_name(tfs_name(TFS_NS_CKM, 3), "CKM_RSA_X_509");
	assert_name(tfs_name(TFS_NS_CKH, 3), "CKH_USER_INTERFACE");
	assert_null(tfs_name(TFS_NS_CKC, 3));
	assert_null(tfs_name(TFS_NS_CKF, 3));
}

static void test_token_flags(void **state)
{
	(void)state;
	assert_name(tfs_name(TFS_NS_CKF, CKF_RNG), "CKF_RNG");
	assert_name(tfs_name(TFS_NS_CKF, CKF_TOKEN_INITIALIZED),
		    "CKF_TOKEN_INITIALIZED");
	assert_name(tfs_name(TFS_NS_CKF, CKF_CLOCK_ON_TOKEN),
		    "CKF_CLOCK_ON_TOKEN");
	assert_name(tfs_name(TFS_NS_CKF, CKF_SO_PIN_TO_BE_CHANGED),
		    "CKF_SO_PIN_TO_BE_CHANGED");
#ifdef CKF_ERROR_STATE
	assert_name(tfs_name(TFS_NS_CKF, CKF_ERROR_STATE), "CKF_ERROR_STATE");
#endif
	/* Single bits only: a flags word is the renderer's to split. */
	assert_null(tfs_name(TFS_NS_CKF, CKF_RNG | CKF_LOGIN_REQUIRED));
	assert_null(tfs_name(TFS_NS_CKF, 0));
	/* Flags of other sets (here CKF_ARRAY_ATTRIBUTE) are not token flags. */
	assert_null(tfs_name(TFS_NS_CKF, UINT64_C(1) << 30));
}

static void test_aliases_prefer_current_name(void **state)
{
	(void)state;
	assert_name(tfs_name(TFS_NS_CKK, CKK_ECDSA), "CKK_EC");
	assert_name(tfs_name(TFS_NS_CKA, CKA_ECDSA_PARAMS), "CKA_EC_PARAMS");
	assert_name(tfs_name(TFS_NS_CKM, CKM_ECDSA_KEY_PAIR_GEN),
		    "CKM_EC_KEY_PAIR_GEN");
	assert_name(tfs_name(TFS_NS_CKM, CKM_CAST5_CBC), "CKM_CAST128_CBC");
	assert_name(tfs_name(TFS_NS_CKM, CKM_PBE_SHA1_CAST5_CBC),
		    "CKM_PBE_SHA1_CAST128_CBC");
#ifdef CKM_DSA_PROBABILISTIC_PARAMETER_GEN
	assert_name(tfs_name(TFS_NS_CKM, CKM_DSA_PROBABILISTIC_PARAMETER_GEN),
		    "CKM_DSA_PROBABILISTIC_PARAMETER_GEN");
#endif
}

static void test_vendor_attributes(void **state)
{
	(void)state;
	assert_name(tfs_name(TFS_NS_CKA, TFS_CKA_VENDOR_SOFTHSM),
		    "CKA_VENDOR_SOFTHSM");
	assert_name(tfs_name(TFS_NS_CKA, TFS_CKA_OS_TOKENLABEL),
		    "CKA_OS_TOKENLABEL");
	assert_name(tfs_name(TFS_NS_CKA, TFS_CKA_OS_TOKENSERIAL),
		    "CKA_OS_TOKENSERIAL");
	assert_name(tfs_name(TFS_NS_CKA, TFS_CKA_OS_TOKENFLAGS),
		    "CKA_OS_TOKENFLAGS");
	assert_name(tfs_name(TFS_NS_CKA, TFS_CKA_OS_SOPIN), "CKA_OS_SOPIN");
	assert_name(tfs_name(TFS_NS_CKA, TFS_CKA_OS_USERPIN), "CKA_OS_USERPIN");
	assert_name(tfs_name_softhsm(TFS_NS_CKA, TFS_CKA_OS_USERPIN),
		    "CKA_OS_USERPIN");
	/* The vendor names are attributes, nothing else. */
	assert_null(tfs_name(TFS_NS_CKM, TFS_CKA_VENDOR_SOFTHSM));
}

static void test_unknown_values(void **state)
{
	(void)state;
	assert_null(tfs_name(TFS_NS_CKA, 0x7fffffffu));
	assert_null(tfs_name(TFS_NS_CKA, CKA_VENDOR_DEFINED));
	assert_null(tfs_name(TFS_NS_CKM, CKM_VENDOR_DEFINED));
	assert_null(tfs_name(TFS_NS_CKO, CKO_VENDOR_DEFINED + 1));
	assert_null(tfs_name(TFS_NS_CKA, UINT64_MAX));
	/* Above 32 bits, where a truncating lookup would find CKA_CLASS. */
	assert_null(tfs_name(TFS_NS_CKA, UINT64_C(1) << 32));
	assert_null(tfs_name_softhsm(TFS_NS_CKA, UINT64_C(1) << 32));
	assert_null(tfs_name((tfs_name_space)TFS_NS_COUNT, 0));
	assert_null(tfs_name((tfs_name_space)-1, 0));
	assert_null(tfs_name_softhsm((tfs_name_space)TFS_NS_COUNT, 0));
}

/* Every table sorted strictly, so the binary search finds every entry. */
static void check_table(const struct tfs_name_table *t,
			const char *(*find)(tfs_name_space, uint64_t),
			tfs_name_space ns)
{
	for (size_t i = 0; i < t->count; i++) {
		if (i > 0)
			assert_true(t->entries[i - 1].value < t->entries[i].value);
		assert_ptr_equal(find(ns, t->entries[i].value),
				 t->entries[i].name);
	}
}

static void test_tables_sorted_and_reachable(void **state)
{
	(void)state;
	for (int ns = 0; ns < TFS_NS_COUNT; ns++) {
		assert_true(tfs_names_current[ns].count > 0);
		check_table(&tfs_names_current[ns], tfs_name, (tfs_name_space)ns);
		check_table(&tfs_names_softhsm[ns], tfs_name_softhsm,
			    (tfs_name_space)ns);
	}
	/* SoftHSM 2.6.1's tables.h: 111 CKA, 9 CKO, 42 CKK, 4 CKC, 324 CKM, 3 CKH. */
	assert_int_equal(tfs_names_softhsm[TFS_NS_CKA].count, 111);
	assert_int_equal(tfs_names_softhsm[TFS_NS_CKO].count, 9);
	assert_int_equal(tfs_names_softhsm[TFS_NS_CKK].count, 42);
	assert_int_equal(tfs_names_softhsm[TFS_NS_CKC].count, 4);
	assert_int_equal(tfs_names_softhsm[TFS_NS_CKM].count, 324);
	assert_int_equal(tfs_names_softhsm[TFS_NS_CKH].count, 3);
	assert_int_equal(tfs_names_softhsm[TFS_NS_CKF].count, 0);
}

static void test_softhsm_compat(void **state)
{
	(void)state;
	assert_name(tfs_name_softhsm(TFS_NS_CKA, CKA_CLASS), "CKA_CLASS");
	assert_name(tfs_name_softhsm(TFS_NS_CKM, CKM_AES_KEY_WRAP_PAD),
		    "CKM_AES_KEY_WRAP_PAD");
	assert_name(tfs_name_softhsm(TFS_NS_CKC, CKC_OPENPGP), "CKC_OPENPGP");
	/* tables.h names only the current spelling of these aliases. */
	assert_name(tfs_name_softhsm(TFS_NS_CKK, CKK_ECDSA), "CKK_EC");
	assert_name(tfs_name_softhsm(TFS_NS_CKA, CKA_ECDSA_PARAMS),
		    "CKA_EC_PARAMS");
	assert_name(tfs_name_softhsm(TFS_NS_CKM, CKM_CAST5_KEY_GEN),
		    "CKM_CAST128_KEY_GEN");
	/* ... and 2.40's misspelling, which 3.0 headers fix beside it. */
	assert_name(tfs_name_softhsm(TFS_NS_CKM, 0x2003),
		    "CKM_DSA_PROBABLISTIC_PARAMETER_GEN");
	/* The tool has no table for token flags. */
	assert_name(tfs_name(TFS_NS_CKF, CKF_RNG), "CKF_RNG");
	assert_null(tfs_name_softhsm(TFS_NS_CKF, CKF_RNG));
	/* 2.6 added EdDSA, a draft of PKCS#11 3.0, ... */
	assert_name(tfs_name_softhsm(TFS_NS_CKM, CKM_EDDSA), "CKM_EDDSA");
	/* ... but the rest of 3.0 postdates the tool: CKA_PROFILE_ID and
	 * CKO_PROFILE are named where the header knows them. */
	assert_null(tfs_name_softhsm(TFS_NS_CKA, 0x601));
	assert_null(tfs_name_softhsm(TFS_NS_CKO, 9));
#ifdef CKA_PROFILE_ID
	assert_name(tfs_name(TFS_NS_CKA, CKA_PROFILE_ID), "CKA_PROFILE_ID");
#endif
#ifdef CKO_PROFILE
	assert_name(tfs_name(TFS_NS_CKO, CKO_PROFILE), "CKO_PROFILE");
#endif
}

static void expect_space(uint64_t attr, tfs_name_space want)
{
	tfs_name_space ns = (tfs_name_space)-1;

	assert_int_equal(tfs_name_space_of_attr(attr, &ns), 0);
	assert_int_equal(ns, want);
}

static void test_name_space_of_attr(void **state)
{
	tfs_name_space ns = TFS_NS_CKF;

	(void)state;
	expect_space(CKA_CLASS, TFS_NS_CKO);
	expect_space(CKA_KEY_TYPE, TFS_NS_CKK);
	expect_space(CKA_CERTIFICATE_TYPE, TFS_NS_CKC);
	expect_space(CKA_KEY_GEN_MECHANISM, TFS_NS_CKM);
	expect_space(CKA_HW_FEATURE_TYPE, TFS_NS_CKH);
	expect_space(CKA_MECHANISM_TYPE, TFS_NS_CKM);
	expect_space(CKA_NAME_HASH_ALGORITHM, TFS_NS_CKM);
	assert_int_equal(tfs_name_space_of_attr(CKA_MODULUS_BITS, &ns), -1);
	assert_int_equal(tfs_name_space_of_attr(CKA_VALUE_LEN, &ns), -1);
	assert_int_equal(tfs_name_space_of_attr(TFS_CKA_OS_TOKENFLAGS, &ns), -1);
	assert_int_equal(tfs_name_space_of_attr(UINT64_C(1) << 32, &ns), -1);
	assert_int_equal(ns, TFS_NS_CKF); /* untouched on -1 */
	assert_int_equal(tfs_name_space_of_attr(CKA_CLASS, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_match_header),
		cmocka_unit_test(test_name_spaces_are_separate),
		cmocka_unit_test(test_token_flags),
		cmocka_unit_test(test_aliases_prefer_current_name),
		cmocka_unit_test(test_vendor_attributes),
		cmocka_unit_test(test_unknown_values),
		cmocka_unit_test(test_tables_sorted_and_reachable),
		cmocka_unit_test(test_softhsm_compat),
		cmocka_unit_test(test_name_space_of_attr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
