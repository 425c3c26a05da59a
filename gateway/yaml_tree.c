/*
 * YAML -> located node tree, built from libyaml's event stream. Everything a document owns lives in
 * one arena (a list of blocks) so that freeing it, on success or on any error path, is one walk.
 */
#include "yaml_tree.h"

#include <errno.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_INPUT_BYTES ((size_t)4 * 1024 * 1024)

/* ---- arena ---- */

enum { BLOCK_BYTES = 16 * 1024, OWN_BLOCK_BYTES = BLOCK_BYTES / 4 };

typedef struct block {
    struct block *next;
    size_t used;
    size_t cap;
    max_align_t data[]; /* element type keeps every allocation maximally aligned */
} block_t;

typedef struct arena {
    block_t *head; /* the block small allocations are carved from */
} arena_t;

static block_t *block_new(size_t cap)
{
    block_t *blk = malloc(sizeof *blk + cap);
    if (blk) {
        blk->next = NULL;
        blk->used = 0;
        blk->cap = cap;
    }
    return blk;
}

static void arena_free(block_t *blk)
{
    while (blk) {
        block_t *next = blk->next;
        free(blk);
        blk = next;
    }
}

/* A large request gets a full block of its own, linked behind the head so that the head's free
 * space stays in use. */
static void *arena_alloc_own(arena_t *a, size_t n)
{
    block_t *blk = block_new(n);
    if (!blk) return NULL;
    blk->used = n;
    if (a->head) {
        blk->next = a->head->next;
        a->head->next = blk;
    } else {
        a->head = blk;
    }
    return blk->data;
}

/* Returns zeroed, aligned memory, or NULL when out of memory. */
static void *arena_alloc(arena_t *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n > SIZE_MAX / 2) return NULL;
    n = n ? (n + align - 1) & ~(align - 1) : align;
    void *p;
    if (n >= OWN_BLOCK_BYTES) {
        p = arena_alloc_own(a, n);
    } else {
        if (!a->head || a->head->cap - a->head->used < n) {
            block_t *blk = block_new(BLOCK_BYTES);
            if (!blk) return NULL;
            blk->next = a->head;
            a->head = blk;
        }
        p = (unsigned char *)a->head->data + a->head->used;
        a->head->used += n;
    }
    if (p) memset(p, 0, n);
    return p;
}

static char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- builder state ---- */

typedef struct child {
    gw_node_t *node;
    struct child *next;
} child_t;

/* A map or sequence whose end event has not arrived yet. */
typedef struct frame {
    gw_node_t *node;
    child_t *head, *tail; /* children so far; for a map keys and values alternate */
    size_t count;
    gw_node_t **keys; /* map only: open-addressing set of the keys seen, for duplicate detection */
    size_t key_slots; /* power of two, or 0 */
} frame_t;

typedef struct builder {
    arena_t arena;
    const char *file;
    const char *data; /* the input, to locate reader errors (they only carry a byte offset) */
    size_t len;
    frame_t stack[GW_YAML_MAX_DEPTH];
    int depth;
    gw_node_t *root;
    char *err;
    size_t errlen;
} builder_t;

static int line_of(yaml_mark_t m)
{
    return (int)m.line + 1;
}

static int column_of(yaml_mark_t m)
{
    return (int)m.column + 1;
}

static bool fail_at(builder_t *b, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "file:line:column: message" to the caller's buffer; returns false for `return fail_at(...)`. */
static bool fail_at(builder_t *b, int line, int column, const char *fmt, ...)
{
    int n = snprintf(b->err, b->errlen, "%s:%d:%d: ", b->file, line, column);
    if (n >= 0 && (size_t)n < b->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool fail_oom(builder_t *b, yaml_mark_t m)
{
    return fail_at(b, line_of(m), column_of(m), "out of memory");
}

/* ---- duplicate keys ---- */

static size_t key_hash(const gw_node_t *k)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (size_t i = 0; i < k->scalar.len; i++)
        h = (h ^ (unsigned char)k->scalar.text[i]) * 1099511628211u;
    return (size_t)h;
}

/* The slot holding a key equal to `k`, or the empty slot where `k` belongs. */
static gw_node_t **key_slot(gw_node_t **slots, size_t nslots, const gw_node_t *k)
{
    size_t i = key_hash(k) & (nslots - 1);
    while (slots[i]) {
        const gw_node_t *s = slots[i];
        if (s->scalar.len == k->scalar.len && memcmp(s->scalar.text, k->scalar.text, k->scalar.len) == 0)
            break;
        i = (i + 1) & (nslots - 1);
    }
    return &slots[i];
}

/* Doubles the key set; the old table stays in the arena (at most as much again, freed with it). */
static bool keys_grow(builder_t *b, frame_t *f)
{
    size_t nslots = f->key_slots ? f->key_slots * 2 : 8;
    gw_node_t **slots = arena_alloc(&b->arena, nslots * sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < f->key_slots; i++)
        if (f->keys[i]) *key_slot(slots, nslots, f->keys[i]) = f->keys[i];
    f->keys = slots;
    f->key_slots = nslots;
    return true;
}

/* A hash set rather than a scan: a 4 MiB file can hold a map with a few hundred thousand keys. */
static bool key_insert(builder_t *b, frame_t *f, gw_node_t *k)
{
    size_t nkeys = f->count / 2;
    if ((nkeys + 1) * 2 > f->key_slots && !keys_grow(b, f))
        return fail_at(b, k->line, k->column, "out of memory");
    gw_node_t **slot = key_slot(f->keys, f->key_slots, k);
    if (*slot) {
        int shown = k->scalar.len > 64 ? 64 : (int)k->scalar.len;
        return fail_at(b, k->line, k->column, "duplicate key '%.*s'", shown, k->scalar.text);
    }
    *slot = k;
    return true;
}

/* ---- tree building ---- */

static gw_node_t *node_new(builder_t *b, gw_node_kind_t kind, yaml_mark_t m)
{
    gw_node_t *n = arena_alloc(&b->arena, sizeof *n);
    if (!n) {
        fail_oom(b, m);
        return NULL;
    }
    n->kind = kind;
    n->line = line_of(m);
    n->column = column_of(m);
    n->file = b->file;
    return n;
}

/* Hands a new node to the collection being built, or makes it the root. */
static bool attach(builder_t *b, gw_node_t *n)
{
    if (b->depth == 0) {
        b->root = n;
        return true;
    }
    frame_t *f = &b->stack[b->depth - 1];
    if (f->node->kind == GW_NODE_MAP && f->count % 2 == 0) {
        if (n->kind != GW_NODE_SCALAR) return fail_at(b, n->line, n->column, "map keys must be scalars");
        if (!key_insert(b, f, n)) return false;
    }
    child_t *c = arena_alloc(&b->arena, sizeof *c);
    if (!c) return fail_at(b, n->line, n->column, "out of memory");
    c->node = n;
    if (f->tail)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    f->count++;
    return true;
}

/* Anchors and aliases would turn the tree into a graph (and enable "billion laughs"); tags would
 * change how a scalar is read. Neither is needed in a configuration file. */
static bool check_plain(builder_t *b, yaml_mark_t m, const yaml_char_t *anchor, const yaml_char_t *tag)
{
    if (anchor) return fail_at(b, line_of(m), column_of(m), "aliases and anchors are not supported");
    if (tag) return fail_at(b, line_of(m), column_of(m), "tags are not supported");
    return true;
}

static bool on_scalar(builder_t *b, const yaml_event_t *ev)
{
    if (!check_plain(b, ev->start_mark, ev->data.scalar.anchor, ev->data.scalar.tag)) return false;
    gw_node_t *n = node_new(b, GW_NODE_SCALAR, ev->start_mark);
    if (!n) return false;
    n->scalar.len = ev->data.scalar.length;
    n->scalar.text = arena_strndup(&b->arena, (const char *)ev->data.scalar.value, n->scalar.len);
    if (!n->scalar.text) return fail_oom(b, ev->start_mark);
    n->scalar.quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    return attach(b, n);
}

static bool on_start(builder_t *b, gw_node_kind_t kind, const yaml_event_t *ev, const yaml_char_t *anchor,
                     const yaml_char_t *tag)
{
    yaml_mark_t m = ev->start_mark;
    if (!check_plain(b, m, anchor, tag)) return false;
    if (b->depth == GW_YAML_MAX_DEPTH)
        return fail_at(b, line_of(m), column_of(m), "nesting deeper than %d levels", GW_YAML_MAX_DEPTH);
    gw_node_t *n = node_new(b, kind, m);
    if (!n || !attach(b, n)) return false;
    b->stack[b->depth++] = (frame_t){.node = n};
    return true;
}

/* Turns the finished collection's child list into the node's array. */
static bool on_end(builder_t *b, const yaml_event_t *ev)
{
    if (b->depth == 0) return true; /* cannot happen: libyaml balances start and end events */
    frame_t *f = &b->stack[--b->depth];
    gw_node_t *n = f->node;
    if (f->count == 0) return true;
    bool map = n->kind == GW_NODE_MAP;
    size_t size = map ? f->count / 2 * sizeof(gw_map_entry_t) : f->count * sizeof(gw_node_t *);
    void *array = arena_alloc(&b->arena, size);
    if (!array) return fail_oom(b, ev->start_mark);
    size_t i = 0;
    for (const child_t *c = f->head; c; c = c->next, i++) {
        if (!map)
            ((gw_node_t **)array)[i] = c->node;
        else if (i % 2 == 0)
            ((gw_map_entry_t *)array)[i / 2].key = c->node;
        else
            ((gw_map_entry_t *)array)[i / 2].value = c->node;
    }
    if (map) {
        n->map.entries = array;
        n->map.count = f->count / 2;
    } else {
        n->seq.items = array;
        n->seq.count = f->count;
    }
    return true;
}

/* Returns 1 to go on, 0 when the first document is complete, -1 on error. */
static int on_event(builder_t *b, const yaml_event_t *ev)
{
    const yaml_mark_t m = ev->start_mark;
    bool ok = true;
    switch (ev->type) {
    case YAML_NO_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return 0;
    case YAML_ALIAS_EVENT:
        ok = fail_at(b, line_of(m), column_of(m), "aliases and anchors are not supported");
        break;
    case YAML_SCALAR_EVENT:
        ok = on_scalar(b, ev);
        break;
    case YAML_MAPPING_START_EVENT:
        ok = on_start(b, GW_NODE_MAP, ev, ev->data.mapping_start.anchor, ev->data.mapping_start.tag);
        break;
    case YAML_SEQUENCE_START_EVENT:
        ok = on_start(b, GW_NODE_SEQ, ev, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
        break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        ok = on_end(b, ev);
        break;
    default: /* stream and document start */
        break;
    }
    return ok ? 1 : -1;
}

/* ---- parser errors ---- */

/* Reader errors (bad encoding, control characters) carry only a byte offset: count lines and
 * characters up to it, as libyaml's marks do (a column counts characters, not bytes). */
static bool fail_reader(builder_t *b, const yaml_parser_t *p)
{
    size_t end = p->problem_offset < b->len ? p->problem_offset : b->len;
    int line = 1, column = 1;
    for (size_t i = 0; i < end; i++) {
        unsigned char c = (unsigned char)b->data[i];
        bool lone_cr = c == '\r' && !(i + 1 < b->len && b->data[i + 1] == '\n');
        if (c == '\n' || lone_cr) {
            line++;
            column = 1;
        } else if ((c & 0xC0) != 0x80) {
            column++;
        }
    }
    const char *problem = p->problem ? p->problem : "cannot decode input";
    if (p->problem_value >= 0)
        return fail_at(b, line, column, "%s (0x%X)", problem, (unsigned)p->problem_value);
    return fail_at(b, line, column, "%s", problem);
}

static bool fail_parser(builder_t *b, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) return fail_at(b, 1, 1, "out of memory");
    if (p->error == YAML_READER_ERROR) return fail_reader(b, p);
    const char *problem = p->problem ? p->problem : "syntax error";
    int line = line_of(p->problem_mark), column = column_of(p->problem_mark);
    if (!p->context) return fail_at(b, line, column, "%s", problem);
    if (p->context_mark.index == p->problem_mark.index)
        return fail_at(b, line, column, "%s %s", problem, p->context);
    /* The context mark says where the unfinished construct began, e.g. an unclosed quote. */
    return fail_at(b, line, column, "%s %s that started at %d:%d", problem, p->context,
                   line_of(p->context_mark), column_of(p->context_mark));
}

static bool run_parser(builder_t *b, yaml_parser_t *p)
{
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) return fail_parser(b, p); /* `ev` is not initialised on failure */
        int r = on_event(b, &ev);
        yaml_event_delete(&ev);
        if (r <= 0) return r == 0;
    }
}

/* ---- public ---- */

bool gw_yaml_load_string(const char *name, const char *data, size_t len, gw_yaml_doc_t *doc, char *err,
                         size_t errlen)
{
    memset(doc, 0, sizeof *doc);
    if (!err) errlen = 0;
    if (!name) name = "<input>";
    if (len > MAX_INPUT_BYTES) {
        snprintf(err, errlen, "%s: larger than 4 MiB", name);
        return false;
    }
    builder_t b = {
        .file = name, .data = data ? data : "", .len = data ? len : 0, .err = err, .errlen = errlen};
    char *file = arena_strndup(&b.arena, name, strlen(name));
    yaml_parser_t p;
    if (!file || !yaml_parser_initialize(&p)) {
        arena_free(b.arena.head);
        snprintf(err, errlen, "%s: out of memory", name);
        return false;
    }
    b.file = file;
    yaml_parser_set_input_string(&p, (const unsigned char *)b.data, b.len);
    bool ok = run_parser(&b, &p);
    yaml_parser_delete(&p);
    if (!ok) {
        arena_free(b.arena.head);
        return false;
    }
    doc->root = b.root;
    doc->file = file;
    doc->arena = b.arena.head;
    return true;
}

/* Reads the whole stream, but at most MAX_INPUT_BYTES + 1 bytes so that an oversized (or endless)
 * file is cut short. Returns 0 or an errno value. */
static int slurp(FILE *f, char **buf, size_t *n)
{
    size_t cap = 0;
    for (;;) {
        if (*n == cap) {
            if (cap > MAX_INPUT_BYTES) return 0;
            size_t next = cap ? cap * 2 : 64 * 1024;
            next = next > MAX_INPUT_BYTES + 1 ? MAX_INPUT_BYTES + 1 : next;
            char *bigger = realloc(*buf, next);
            if (!bigger) return ENOMEM;
            *buf = bigger;
            cap = next;
        }
        size_t got = fread(*buf + *n, 1, cap - *n, f);
        *n += got;
        if (got == 0) return ferror(f) ? (errno ? errno : EIO) : 0;
    }
}

static char *read_input(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0;
    errno = 0;
    int why = slurp(f, &buf, &n);
    fclose(f);
    if (why)
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(why));
    else if (n > MAX_INPUT_BYTES)
        snprintf(err, errlen, "%s: larger than 4 MiB", path);
    if (why || n > MAX_INPUT_BYTES) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

bool gw_yaml_load(const char *path, gw_yaml_doc_t *doc, char *err, size_t errlen)
{
    memset(doc, 0, sizeof *doc);
    if (!err) errlen = 0;
    size_t len = 0;
    char *data = read_input(path, &len, err, errlen);
    if (!data) return false;
    bool ok = gw_yaml_load_string(path, data, len, doc, err, errlen);
    free(data);
    return ok;
}

void gw_yaml_free(gw_yaml_doc_t *doc)
{
    if (!doc) return;
    arena_free(doc->arena);
    memset(doc, 0, sizeof *doc);
}

gw_node_t *gw_yaml_map_get(const gw_node_t *map, const char *name)
{
    if (!map || map->kind != GW_NODE_MAP || !name) return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i < map->map.count; i++) {
        const gw_node_t *k = map->map.entries[i].key;
        if (k->scalar.len == n && memcmp(k->scalar.text, name, n) == 0) return map->map.entries[i].value;
    }
    return NULL;
}

bool gw_yaml_is_null(const gw_node_t *n)
{
    if (!n || n->kind != GW_NODE_SCALAR || n->scalar.quoted) return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (n->scalar.len == strlen(nulls[i]) && memcmp(n->scalar.text, nulls[i], n->scalar.len) == 0)
            return true;
    return false;
}
