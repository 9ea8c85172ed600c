/* libtokenfs: the whole public API. */
#ifndef TOKENFS_TOKENFS_H
#define TOKENFS_TOKENFS_H

#include "tokenfs/crypto.h"
#include "tokenfs/decode.h"
#include "tokenfs/error.h"
#include "tokenfs/export.h"
#include "tokenfs/finding.h"
#include "tokenfs/fs.h"
#include "tokenfs/keys.h"
#include "tokenfs/names.h"
#include "tokenfs/object.h"
#include "tokenfs/pairing.h"
#include "tokenfs/pinspec.h"
#include "tokenfs/pkcs11.h"
#include "tokenfs/softhsm_dump.h"
#include "tokenfs/store.h"
#include "tokenfs/text.h"
#include "tokenfs/txn.h"
#include "tokenfs/change.h"
#include "tokenfs/verify.h"
#include "tokenfs/archive.h"
#include "tokenfs/backup.h"
#include "tokenfs/diff.h"
#include "tokenfs/audit.h"
#include "tokenfs/uri.h"

#define TFS_VERSION_STRING "0.1.0"

#endif
