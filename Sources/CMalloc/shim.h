#ifndef RECON_CMALLOC_SHIM_H
#define RECON_CMALLOC_SHIM_H
// glibc's allocator controls (malloc_trim), which Swift's Glibc module does not bring in.
#include <malloc.h>
#endif
