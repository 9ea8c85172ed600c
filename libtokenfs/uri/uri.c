/*
 * PKCS#11 URIs (tokenfs/uri.h). tokenfs fills in what SoftHSM would report
 * through PKCS#11 and leaves the formatting to p11-kit, the library p11tool
 * formats with: its percent-encoding and attribute order are then p11tool's
 * by construction, with no second copy of RFC 7512's rules here.
 */
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include "core/error_internal.h"
#include "tokenfs/crypto.h"
#include "tokenfs/names.h"
#include "tokenfs/pkcs11.h"
#include "tokenfs/uri.h"

/* SoftHSM's constants in C_GetTokenInfo (src/lib/slot_mgr/Token.cpp). */
static const char SOFTHSM_MANUFACTURER[] = "SoftHSM project";
static const char SOFTHSM_MODEL[] = "SoftHSM v2";

/* A blank-padded CK_TOKEN_INFO field holding s. */
static void put_text(unsigned char *field, size_t size, const char *s)
{
	memset(field, ' ', size);
	memcpy(field, s, strlen(s));
}

/*
 * A field from a token.object attribute, copied as SoftHSM's
 * getTokenInfo does: blanks, then strncpy of the stored bytes (up to a NUL,
 * NUL-filled after it). Cut at the field's size, where SoftHSM would write
 * past it.
 */
static void put_stored(unsigned char *field, size_t size, const tfs_object *meta, uint64_t type)
{
	memset(field, ' ', size);
	const tfs_attr *a = tfs_object_find(meta, type);
	if (a == NULL || tfs_attr_kind(a) != TFS_KIND_BYTES)
		return;
	size_t n;
	const uint8_t *p = tfs_attr_bytes(a, &n);
	bool ended = false;
	for (size_t i = 0; i < n && i < size; i++) {
		ended = ended || p[i] == 0;
		field[i] = ended ? 0 : p[i];
	}
}

static int token_part(P11KitUri *uri, const tfs_token *tok, tfs_error *err)
{
	const tfs_object *meta = tfs_token_metadata(tok);
	if (meta == NULL) {
		tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET,
		              "no readable token.object: the token's label and serial are unknown");
		return tfs_error_where(err, "%s", tfs_token_path(tok));
	}
	CK_TOKEN_INFO *info = p11_kit_uri_get_token_info(uri);
	put_text(info->manufacturerID, sizeof(info->manufacturerID), SOFTHSM_MANUFACTURER);
	put_text(info->model, sizeof(info->model), SOFTHSM_MODEL);
	put_stored(info->label, sizeof(info->label), meta, TFS_CKA_OS_TOKENLABEL);
	put_stored(info->serialNumber, sizeof(info->serialNumber), meta, TFS_CKA_OS_TOKENSERIAL);
	return TFS_OK;
}

static int format_uri(char **out, P11KitUri *uri, P11KitUriType type, tfs_error *err)
{
	char *s = NULL;
	int rc = p11_kit_uri_format(uri, type, &s);
	if (rc != P11_KIT_URI_OK) {
		free(s);
		return rc == P11_KIT_URI_UNEXPECTED ? tfs_nomem(err)
		       : tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "p11-kit cannot format the URI: %s",
		                       p11_kit_uri_message(rc));
	}
	*out = s;
	return TFS_OK;
}

int tfs_token_uri(char **out, const tfs_token *tok, tfs_error *err)
{
	*out = NULL;
	P11KitUri *uri = p11_kit_uri_new();
	if (uri == NULL)
		return tfs_nomem(err);
	int rc = token_part(uri, tok, err);
	if (rc == TFS_OK)
		rc = format_uri(out, uri, P11_KIT_URI_FOR_TOKEN, err);
	p11_kit_uri_free(uri);
	return rc;
}

/*
 * Adds byte-string attribute `type` of obj to uri as PKCS#11 would return
 * it: the plaintext, decrypted with key when stored encrypted. Absent and
 * empty values are left out, as p11tool leaves them out.
 */
static int add_bytes(P11KitUri *uri, const tfs_object *obj, uint64_t type, const char *name,
                     const tfs_token_key *key, tfs_error *err)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	if (a == NULL || tfs_attr_kind(a) != TFS_KIND_BYTES)
		return TFS_OK;
	size_t len;
	const uint8_t *stored = tfs_attr_bytes(a, &len);
	uint8_t *plain = NULL;
	if (tfs_object_attr_encrypted(obj, a)) {
		if (key == NULL)
			return tfs_error_set(err, TFS_E_INVALID, tfs_attr_value_offset(a),
			                     "%s is stored encrypted (a private object): "
			                     "the URI needs the token key", name);
		tfs_layout layout;
		tfs_error derr;
		int drc = tfs_token_key_decrypt(key, &plain, &len, &layout, stored, len, &derr);
		if (drc == TFS_E_NOMEM || drc == TFS_E_CRYPTO) {
			*err = derr; /* memory or OpenSSL: not the value's fault */
			return drc;
		}
		if (drc != TFS_OK)
			return tfs_error_set(err, TFS_E_DAMAGED, tfs_attr_value_offset(a),
			                     "%s does not decrypt with the token key", name);
	}
	int rc = TFS_OK;
	if (len > 0) {
		CK_ATTRIBUTE attr = {type, plain != NULL ? plain : (void *)stored, len};
		if (p11_kit_uri_set_attribute(uri, &attr) != P11_KIT_URI_OK)
			rc = tfs_nomem(err);
	}
	if (plain != NULL)
		tfs_secure_free(plain, len);
	return rc;
}

int tfs_object_uri(char **out, const tfs_token *tok, const tfs_object *obj,
                   const tfs_token_key *key, tfs_error *err)
{
	*out = NULL;
	P11KitUri *uri = p11_kit_uri_new();
	if (uri == NULL)
		return tfs_nomem(err);
	int rc = token_part(uri, tok, err);
	if (rc == TFS_OK)
		rc = add_bytes(uri, obj, CKA_ID, "CKA_ID", key, err);
	if (rc == TFS_OK)
		rc = add_bytes(uri, obj, CKA_LABEL, "CKA_LABEL", key, err);
	const tfs_attr *cls = tfs_object_find(obj, CKA_CLASS);
	if (rc == TFS_OK && cls != NULL && tfs_attr_kind(cls) == TFS_KIND_ULONG) {
		/* p11-kit names the five classes of RFC 7512 and leaves others out. */
		CK_OBJECT_CLASS v = (CK_OBJECT_CLASS)tfs_attr_ulong(cls);
		CK_ATTRIBUTE attr = {CKA_CLASS, &v, sizeof(v)};
		if (p11_kit_uri_set_attribute(uri, &attr) != P11_KIT_URI_OK)
			rc = tfs_nomem(err);
	}
	if (rc == TFS_OK)
		rc = format_uri(out, uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, err);
	/* p11-kit frees its copies of the label and ID without wiping them;
	 * they are identifiers, not key material, and the URI carries them. */
	p11_kit_uri_free(uri);
	return rc;
}
