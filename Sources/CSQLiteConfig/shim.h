#ifndef RECON_CSQLITECONFIG_SHIM_H
#define RECON_CSQLITECONFIG_SHIM_H
#include <sqlite3.h>

/// Switches off SQLite's memory statistics, which take a process-wide mutex on every
/// allocation SQLite makes. `sqlite3_config` is variadic, which Swift cannot call; it only
/// takes effect before the library is initialized (SQLITE_MISUSE after).
static inline int recon_sqlite3_disable_memstatus(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
#endif
