#ifndef RECON_CLIBXML2_SHIM_H
#define RECON_CLIBXML2_SHIM_H
// Debian builds libxml2 with ICU; ICU's types clash with Foundation's copy of them, so the
// parser is used without its ICU-dependent declarations (we never need them).
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/SAX2.h>

/// `xmlFree` is a global function pointer, which Swift 6 refuses to call; this wraps it.
static inline void recon_xmlFree(void *p) { xmlFree(p); }
#endif
