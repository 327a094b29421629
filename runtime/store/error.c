/* error.c -- cairn_strerror: cairn's codes, then LMDB's, then the C library's. */
#include <lmdb.h>
#include <string.h>

#include "cairn.h"

const char *cairn_strerror(int rc)
{
    switch (rc) {
    case CAIRN_OK: return "success";
    case CAIRN_CONFLICT: return "version conflict";
    case CAIRN_NOTFOUND: return "not found";
    case CAIRN_CORRUPT: return "corrupt record";
    case CAIRN_SCHEMA: return "value cannot be stored";
    case CAIRN_CONFIG: return "bad configuration";
    case CAIRN_END: return "end of data";
    case CAIRN_INVALID: return "invalid argument";
    case CAIRN_INTERRUPTED: return "interrupted";
    case CAIRN_LUA: return "Lua error";
    case CAIRN_STORE: return "storage failure";
    case CAIRN_SANDBOX: return "sandboxed code broke a rule or a bound";
    default: break;
    }
    /* mdb_strerror covers LMDB's range and falls back to strerror for errno */
    return mdb_strerror(rc);
}
