/*
 * gguf.h - GGUF v2/v3 reader (mmap) and streaming writer.
 *
 * The reader treats the file as hostile: every count, size and offset is
 * checked against the file size with overflow-checked arithmetic before it is
 * used, and each failure produces a one-line message naming the key or
 * tensor.  Nothing in the returned structures points outside the mapping.
 */
#ifndef G4_GGUF_H
#define G4_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
    GGUF_VT_UINT8 = 0, GGUF_VT_INT8 = 1, GGUF_VT_UINT16 = 2, GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4, GGUF_VT_INT32 = 5, GGUF_VT_FLOAT32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_UINT64 = 10, GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
};

#define GGUF_MAX_DIMS 4

typedef struct {
    uint64_t    len;
    const char *ptr;       /* into the mapping, NOT NUL-terminated */
} gguf_str;

typedef struct {
    const char *key;       /* NUL-terminated copy */
    uint32_t    type;      /* enum gguf_vtype */
    uint32_t    arr_type;  /* element type when type == ARRAY */
    uint64_t    n;         /* element count: 1 for scalars */
    const void *data;      /* numeric/bool scalars and arrays: raw little-endian
                              elements in the mapping; strings: gguf_str[n] */
} gguf_kv;

typedef struct {
    const char *name;      /* NUL-terminated copy */
    uint32_t    type;      /* ggml type id (g4_type_get() != NULL) */
    uint32_t    n_dims;
    uint64_t    ne[GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint64_t    n_elements;
    uint64_t    offset;    /* relative to the start of the data section */
    uint64_t    nbytes;
    const void *data;      /* into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Returns 0 on success; otherwise fills err with a one-line message. */
int  gguf_open(const char *path, gguf_file **out, char *err, size_t errlen);
/* Parse a memory buffer (not copied; must outlive the handle).  For tests. */
int  gguf_open_memory(const void *data, size_t size, gguf_file **out, char *err, size_t errlen);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f);  /* absolute offset of data section */
const void *gguf_base(const gguf_file *f);     /* start of the mapping */

uint64_t          gguf_n_kv(const gguf_file *f);
const gguf_kv    *gguf_kv_at(const gguf_file *f, uint64_t i);
const gguf_kv    *gguf_find_kv(const gguf_file *f, const char *key);
uint64_t          gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters.  Return 0 on success, -1 if the key is missing, -2 if it has
 * an incompatible type or value (e.g. negative into unsigned, out of range). */
int gguf_get_uint(const gguf_file *f, const char *key, uint64_t *out); /* any integer type, value >= 0 */
int gguf_get_int(const gguf_file *f, const char *key, int64_t *out);   /* any integer type */
int gguf_get_float(const gguf_file *f, const char *key, double *out);  /* f32/f64 (or integer) */
int gguf_get_bool(const gguf_file *f, const char *key, bool *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* Element i of an array of integers / bools / floats / strings. i < kv->n. */
int64_t  gguf_arr_int(const gguf_kv *kv, uint64_t i);   /* integer or bool arrays */
double   gguf_arr_float(const gguf_kv *kv, uint64_t i); /* float or integer arrays */
gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i);   /* string arrays */
bool     gguf_vtype_is_int(uint32_t vt);
const char *gguf_vtype_name(uint32_t vt);
uint64_t    gguf_vtype_size(uint32_t vt); /* scalar bytes; 0 for string/array/unknown */

/* ---- writer: header first, then tensor data streamed in declaration order.
 * Always writes GGUF v3 with alignment general.alignment (default 32). */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
/* Metadata (keys are copied; a repeated key replaces the earlier value). */
void gguf_w_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_w_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_w_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_w_f32(gguf_writer *w, const char *key, float v);
void gguf_w_bool(gguf_writer *w, const char *key, bool v);
void gguf_w_str(gguf_writer *w, const char *key, const char *v);
void gguf_w_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
void gguf_w_arr_u32(gguf_writer *w, const char *key, const uint32_t *v, uint64_t n);
void gguf_w_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
void gguf_w_arr_bool(gguf_writer *w, const char *key, const bool *v, uint64_t n);
void gguf_w_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Any value in the reader's representation (see gguf_kv): type is a gguf_vtype
 * (not ARRAY of ARRAY); arr_type the element type when type == GGUF_VT_ARRAY
 * (ignored otherwise); n the element count (must be 1 for scalars); data the
 * raw little-endian elements for numeric and bool values (any alignment,
 * copied byte for byte), or gguf_str[n] for strings (lengths are exact, so a
 * string may hold NUL bytes).  This covers the types without a typed setter
 * (u8/i8/u16/i16/i64/f64 scalars and arrays) and lets a converter copy every
 * key of an input file exactly:
 *     gguf_w_raw(w, kv->key, kv->type, kv->arr_type, kv->n, kv->data);
 * A bad type or count is reported by gguf_w_begin(). */
void gguf_w_raw(gguf_writer *w, const char *key, uint32_t type, uint32_t arr_type,
                uint64_t n, const void *data);
/* Declare a tensor (ne[0] is the contiguous dimension). */
int  gguf_w_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                   const uint64_t *ne, char *err, size_t errlen);
/* Write the header and tensor infos to path (created/truncated). */
int  gguf_w_begin(gguf_writer *w, const char *path, char *err, size_t errlen);
/* Append data bytes of the current tensor (may be called several times per
 * tensor); gguf_w_end_tensor checks the byte count and pads to alignment. */
int  gguf_w_data(gguf_writer *w, const void *data, size_t n, char *err, size_t errlen);
int  gguf_w_end_tensor(gguf_writer *w, char *err, size_t errlen);
/* Checks all tensors were written, flushes and closes. */
int  gguf_w_finish(gguf_writer *w, char *err, size_t errlen);

#endif
