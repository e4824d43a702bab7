/*
 * quiesce/api.h: export and language-linkage macros shared by every public
 * header. Not useful on its own.
 */
#ifndef QUIESCE_API_H
#define QUIESCE_API_H

#if defined(QC_BUILDING_LIBRARY) && defined(__GNUC__)
#define QC_API __attribute__((visibility("default")))
#else
#define QC_API
#endif

#ifdef __cplusplus
#define QC_BEGIN_DECLS extern "C" {
#define QC_END_DECLS   }
#else
#define QC_BEGIN_DECLS
#define QC_END_DECLS
#endif

#endif /* QUIESCE_API_H */
