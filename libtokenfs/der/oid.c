/*
 * Names of OIDs. OpenSSL's object table is the reference the tests compare
 * with, so names come from it (OBJ_*), which also keeps them the same as
 * `openssl x509 -text` prints. The only table of our own is the four
 * Edwards/Montgomery algorithms, whose PKCS#11 names OpenSSL does not know.
 */
#include "der/der_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>

static const tfs_ecx_info ecx[] = {
	{"1.3.101.110", "X25519", "curve25519", 255, 253, 32},
	{"1.3.101.111", "X448", "curve448", 448, 448, 56},
	{"1.3.101.112", "Ed25519", "edwards25519", 255, 256, 32},
	{"1.3.101.113", "Ed448", "edwards448", 448, 456, 57},
};

const tfs_ecx_info *tfs_der_ecx_by_oid(const char *dotted)
{
	for (size_t i = 0; i < sizeof(ecx) / sizeof(ecx[0]); i++)
		if (strcmp(ecx[i].oid, dotted) == 0)
			return &ecx[i];
	return NULL;
}

const tfs_ecx_info *tfs_der_ecx_by_p11_name(const char *name)
{
	for (size_t i = 0; i < sizeof(ecx) / sizeof(ecx[0]); i++)
		if (strcmp(ecx[i].p11_name, name) == 0)
			return &ecx[i];
	return NULL;
}

/* The OpenSSL object for a dotted OID, or NULL. OBJ_txt2obj in numeric
 * mode leaves errors on OpenSSL's queue for OIDs it cannot encode; they
 * are not ours to leave behind. */
static ASN1_OBJECT *object(const char *dotted)
{
	ERR_set_mark();
	ASN1_OBJECT *o = OBJ_txt2obj(dotted, 1);
	ERR_pop_to_mark();
	return o;
}

void tfs_der_oid_long_name(const char *dotted, char *buf, size_t size)
{
	ASN1_OBJECT *o = object(dotted);
	if (o == NULL || OBJ_obj2txt(buf, (int)size, o, 0) <= 0)
		snprintf(buf, size, "%s", dotted);
	ASN1_OBJECT_free(o);
}

const char *tfs_der_oid_short_name(const char *dotted)
{
	ASN1_OBJECT *o = object(dotted);
	int nid = o != NULL ? OBJ_obj2nid(o) : NID_undef;
	ASN1_OBJECT_free(o);
	return nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
}
