//! Lenient OpenAPI 3.0 request/response body validation for tests.
//!
//! Self-contained: depends only on `serde_json` (with `preserve_order`),
//! `serde_yaml_ng` 0.10 and `jsonschema` 0.30 (default features off).
//!
//! The vendor YAML is parsed into `serde_yaml_ng::Value`, converted to
//! `serde_json::Value` (non-string map keys such as NSwag's `200:` are
//! stringified, YAML tags are dropped), and every schema that is needed for a
//! validation is translated from the OpenAPI 3.0 dialect into a JSON Schema
//! draft 2020-12 document:
//!
//! * `$ref: '#/components/schemas/X'` becomes `$ref: '#/$defs/X'` and only the
//!   component schemas reachable from the validated schema are copied into
//!   `$defs` (recursive schemas therefore work). Other local refs
//!   (`#/components/responses/..`, deep pointers) are inlined with a depth
//!   guard; external refs accept anything.
//! * A `$ref` with sibling keys: the `$ref` wins and the siblings are ignored
//!   (OAS 3.0 semantics), except that a sibling `nullable: true` still admits
//!   `null`.
//! * `nullable: true` (and NSwag's `default: null`, which says that `null` is
//!   the property's value when absent) admits `null`, also for `enum`,
//!   `allOf`/`oneOf`/`anyOf` and `$ref` schemas.
//! * Only validation keywords are copied (whitelist). `example(s)`,
//!   `default`, `deprecated`, `xml`, `x-*`, `discriminator`, `externalDocs`,
//!   `title`, `description` and `format` are dropped, and format assertion is
//!   switched off, so `guid`, `decimal`, `int64`, `uri`, `date-time`... are
//!   never asserted.
//! * OAS 3.0 boolean `exclusiveMinimum/exclusiveMaximum` become the numeric
//!   2020-12 form.
//! * `readOnly` properties are not `required` when validating a request and
//!   `writeOnly` properties are not `required` when validating a response.
//! * `pattern`s are matched case-insensitively (Cliniko's e-mail patterns only
//!   list `A-Z`), Ruby-isms (`\h`, `\A`, `\z`) are translated, and a pattern
//!   the regex engine cannot compile is dropped.
//! * Additional properties are allowed unless the schema says
//!   `additionalProperties: false` (JSON Schema and OAS agree on that).
#![allow(dead_code)]

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// One reason a body does not match the spec (or why it could not be checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer into the validated body (`""` is the whole body, and is also
    /// used for "not declared in the spec" errors).
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "(body): {}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

fn spec_error(message: impl Into<String>) -> Vec<SchemaViolation> {
    vec![SchemaViolation {
        pointer: String::new(),
        message: message.into(),
    }]
}

/// A leniently loaded OpenAPI 3.0 document.
pub struct Spec {
    doc: Value,
    implicit_nullable: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// readOnly properties are not required.
    Request,
    /// writeOnly properties are not required.
    Response,
    /// Schema as written.
    Neutral,
}

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl Spec {
    /// Load leniently from a YAML (or JSON) file path.
    pub fn load(path: &Path) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_yaml_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Load leniently from YAML (or JSON) text.
    pub fn from_yaml_str(text: &str) -> Result<Spec, String> {
        let mut yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| format!("YAML parse error: {e}"))?;
        // `<<` merge keys; a malformed merge is tolerated (left as is).
        let _ = yaml.apply_merge();
        let doc = yaml_to_json(yaml);
        if !doc.is_object() {
            return Err("the document is not a mapping".to_string());
        }
        if doc.get("paths").is_none() && doc.get("components").is_none() {
            return Err("the document has neither `paths` nor `components`".to_string());
        }
        Ok(Spec {
            doc,
            implicit_nullable: false,
        })
    }

    /// Treat every object property as nullable (off by default). Useful for
    /// generated specs (NSwag) whose servers serialise unset properties as
    /// `null` without declaring `nullable: true`.
    pub fn with_implicit_nullable(mut self, yes: bool) -> Spec {
        self.implicit_nullable = yes;
        self
    }

    /// The converted (JSON) document.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Validate a response body for an operation. `path_template` is the
    /// spec's path key, method is e.g. "get", status e.g. 200.
    pub fn validate_response(
        &self,
        path_template: &str,
        method: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), Vec<SchemaViolation>> {
        let (op, what) = self.operation(path_template, method)?;
        let responses = op
            .get("responses")
            .and_then(Value::as_object)
            .ok_or_else(|| spec_error(format!("{what} declares no responses")))?;
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        let response = responses
            .get(&code)
            .or_else(|| responses.get(&range))
            .or_else(|| responses.get(&range.to_lowercase()))
            .or_else(|| responses.get("default"))
            .ok_or_else(|| {
                let declared: Vec<&str> = responses.keys().map(String::as_str).collect();
                spec_error(format!(
                    "status {status} is not declared for {what} (declared: {})",
                    declared.join(", ")
                ))
            })?;
        let response = self.deref(response);
        let schema = self
            .json_schema_of(response, &format!("{what} response {status}"))
            .map_err(spec_error)?;
        self.validate_schema(schema, Mode::Response, body)
    }

    /// Validate a request body against the operation's `requestBody` schema
    /// (first JSON-ish content type: application/json, text/json,
    /// application/*+json).
    pub fn validate_request(
        &self,
        path_template: &str,
        method: &str,
        body: &Value,
    ) -> Result<(), Vec<SchemaViolation>> {
        let (op, what) = self.operation(path_template, method)?;
        let request_body = op
            .get("requestBody")
            .ok_or_else(|| spec_error(format!("{what} declares no requestBody")))?;
        let request_body = self.deref(request_body);
        let schema = self
            .json_schema_of(request_body, &format!("{what} requestBody"))
            .map_err(spec_error)?;
        self.validate_schema(schema, Mode::Request, body)
    }

    /// Validate against a named component schema, e.g. "Patient" or
    /// "CustomerInput" (schema as written: readOnly/writeOnly properties stay
    /// required if the schema lists them).
    pub fn validate_component(&self, name: &str, body: &Value) -> Result<(), Vec<SchemaViolation>> {
        let schema = self
            .doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .and_then(|schemas| schemas.get(name))
            .ok_or_else(|| spec_error(format!("component schema {name} is not declared")))?;
        self.validate_schema(schema, Mode::Neutral, body)
    }

    /// Find the spec path template matching a concrete path such as
    /// "/v1/patients/123?page=2" after stripping `prefix` ("/v1"). A full URL
    /// is accepted too (scheme and host are ignored). Literal segments win over
    /// `{params}` (compared left to right); an exact-case literal wins over a
    /// case-insensitive one.
    pub fn match_path(&self, prefix: &str, concrete: &str) -> Option<String> {
        self.best_path(prefix, concrete, None)
    }

    /// Like [`Spec::match_path`], but only considers templates that declare
    /// `method`.
    pub fn match_path_for_method(
        &self,
        prefix: &str,
        method: &str,
        concrete: &str,
    ) -> Option<String> {
        self.best_path(prefix, concrete, Some(&method.to_ascii_lowercase()))
    }

    /// Every `(path template, method)` pair the spec declares, in document order.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(paths) = self.doc.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                let item = self.deref(item);
                for method in HTTP_METHODS {
                    if item.get(method).is_some_and(Value::is_object) {
                        out.push((template.clone(), method.to_string()));
                    }
                }
            }
        }
        out
    }

    /// Status codes declared for an operation, as written in the spec
    /// ("200", "default", ...).
    pub fn response_codes(&self, path_template: &str, method: &str) -> Vec<String> {
        self.operation(path_template, method)
            .ok()
            .and_then(|(op, _)| op.get("responses").and_then(Value::as_object))
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------- lookup

    fn operation(
        &self,
        path_template: &str,
        method: &str,
    ) -> Result<(&Value, String), Vec<SchemaViolation>> {
        let method = method.to_ascii_lowercase();
        let what = format!("{} {path_template}", method.to_uppercase());
        let item = self
            .doc
            .get("paths")
            .and_then(Value::as_object)
            .and_then(|paths| paths.get(path_template))
            .ok_or_else(|| {
                spec_error(format!("path {path_template} is not declared in the spec"))
            })?;
        let op = self
            .deref(item)
            .get(&method)
            .filter(|op| op.is_object())
            .ok_or_else(|| spec_error(format!("operation {what} is not declared in the spec")))?;
        Ok((op, what))
    }

    /// Follow local `$ref`s (response, requestBody, path item objects).
    fn deref<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match value
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| resolve_local(&self.doc, r))
            {
                Some(target) => value = target,
                None => break,
            }
        }
        value
    }

    /// The schema of the first JSON-ish media type of a response or requestBody.
    fn json_schema_of<'a>(&'a self, holder: &'a Value, what: &str) -> Result<&'a Value, String> {
        let content = holder
            .get("content")
            .and_then(Value::as_object)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("{what} declares no content (no body schema)"))?;
        let (media_type, media) = content
            .iter()
            .find(|(media_type, _)| is_json_media_type(media_type))
            .ok_or_else(|| {
                let declared: Vec<&str> = content.keys().map(String::as_str).collect();
                format!(
                    "{what} declares no JSON content type (declared: {})",
                    declared.join(", ")
                )
            })?;
        media
            .get("schema")
            .ok_or_else(|| format!("{what} content {media_type} declares no schema"))
    }

    fn best_path(&self, prefix: &str, concrete: &str, method: Option<&str>) -> Option<String> {
        let path = strip_to_path(concrete);
        let path = strip_prefix(path, prefix);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let paths = self.doc.get("paths")?.as_object()?;
        let mut best: Option<(Vec<u8>, &String)> = None;
        for (template, item) in paths {
            if let Some(method) = method
                && !self.deref(item).get(method).is_some_and(Value::is_object)
            {
                continue;
            }
            let Some(score) = score_template(template, &segments) else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|(best_score, _)| score > *best_score)
            {
                best = Some((score, template));
            }
        }
        best.map(|(_, template)| template.clone())
    }

    // ------------------------------------------------------------ validation

    fn validate_schema(
        &self,
        schema: &Value,
        mode: Mode,
        body: &Value,
    ) -> Result<(), Vec<SchemaViolation>> {
        let root = self.json_schema_root(schema, mode);
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(false)
            .build(&root)
            .map_err(|e| spec_error(format!("converted schema does not compile: {e}")))?;
        let mut violations = Vec::new();
        for error in validator.iter_errors(body) {
            let pointer = error.instance_path.as_str().to_string();
            // A failed nullable wrapper says only "not valid under any of the
            // schemas listed in 'anyOf'": report why the non-null branch failed.
            if !error.instance.is_null()
                && let Some(inner) = nullable_branch(&root, error.schema_path.as_str())
            {
                let mut sub = inner.clone();
                if let (Value::Object(sub_map), Some(defs)) = (&mut sub, root.get("$defs")) {
                    sub_map.insert("$defs".to_string(), defs.clone());
                }
                if let Ok(sub_validator) = jsonschema::draft202012::options()
                    .should_validate_formats(false)
                    .build(&sub)
                {
                    let before = violations.len();
                    for sub_error in sub_validator.iter_errors(&error.instance) {
                        violations.push(SchemaViolation {
                            pointer: format!("{pointer}{}", sub_error.instance_path.as_str()),
                            message: format!("{sub_error} (null is also allowed)"),
                        });
                    }
                    if violations.len() > before {
                        continue;
                    }
                }
            }
            violations.push(SchemaViolation {
                pointer,
                message: error.to_string(),
            });
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// A self-contained draft 2020-12 schema: the converted schema plus the
    /// reachable component schemas under `$defs`.
    fn json_schema_root(&self, schema: &Value, mode: Mode) -> Value {
        let mut converter = Converter {
            doc: &self.doc,
            schemas: self
                .doc
                .pointer("/components/schemas")
                .and_then(Value::as_object),
            mode,
            implicit_nullable: self.implicit_nullable,
            pending: BTreeSet::new(),
            done: BTreeMap::new(),
            depth: 0,
        };
        let main = converter.convert(schema);
        while let Some(name) = converter.pending.pop_first() {
            if converter.done.contains_key(&name) {
                continue;
            }
            // Placeholder first so that recursion does not re-queue it.
            converter.done.insert(name.clone(), Value::Bool(true));
            let component = converter
                .schemas
                .and_then(|s| s.get(&name))
                .unwrap_or(&Value::Null);
            let converted = converter.convert(component);
            converter.done.insert(name, converted);
        }
        let mut root = match main {
            Value::Object(map) => map,
            other => {
                let mut map = Map::new();
                map.insert("allOf".to_string(), Value::Array(vec![other]));
                map
            }
        };
        if !converter.done.is_empty() {
            root.insert(
                "$defs".to_string(),
                Value::Object(converter.done.into_iter().collect()),
            );
        }
        Value::Object(root)
    }
}

// -------------------------------------------------------------- conversion

struct Converter<'a> {
    doc: &'a Value,
    schemas: Option<&'a Map<String, Value>>,
    mode: Mode,
    implicit_nullable: bool,
    pending: BTreeSet<String>,
    done: BTreeMap<String, Value>,
    depth: usize,
}

const MAX_INLINE_DEPTH: usize = 32;

/// Keywords copied verbatim (when their value has the right JSON type).
const COPIED_NUMBERS: [&str; 9] = [
    "multipleOf",
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
];

impl Converter<'_> {
    fn convert(&mut self, schema: &Value) -> Value {
        let obj = match schema {
            Value::Bool(b) => return Value::Bool(*b),
            Value::Object(obj) => obj,
            _ => return json!({}),
        };
        let nullable = obj.get("nullable") == Some(&Value::Bool(true))
            || obj.get("default") == Some(&Value::Null);

        if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
            let converted = self.convert_ref(reference);
            return if nullable {
                allow_null(converted)
            } else {
                converted
            };
        }

        let mut out = Map::new();
        if let Some(t) = obj.get("type").filter(|t| t.is_string() || t.is_array()) {
            out.insert("type".to_string(), t.clone());
        }
        for key in ["enum"] {
            if let Some(v) = obj.get(key).filter(|v| v.is_array()) {
                out.insert(key.to_string(), v.clone());
            }
        }
        if let Some(v) = obj.get("const") {
            out.insert("const".to_string(), v.clone());
        }
        for key in COPIED_NUMBERS {
            if let Some(v) = obj.get(key).filter(|v| v.is_number()) {
                out.insert(key.to_string(), v.clone());
            }
        }
        if let Some(v) = obj.get("uniqueItems").filter(|v| v.is_boolean()) {
            out.insert("uniqueItems".to_string(), v.clone());
        }
        for (exclusive, bound) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            match obj.get(exclusive) {
                Some(Value::Bool(true)) => {
                    if let Some(limit) = out.remove(bound) {
                        out.insert(exclusive.to_string(), limit);
                    }
                }
                Some(v @ Value::Number(_)) => {
                    out.insert(exclusive.to_string(), v.clone());
                }
                _ => {}
            }
        }
        if let Some(pattern) = obj
            .get("pattern")
            .and_then(Value::as_str)
            .and_then(translate_pattern)
        {
            out.insert("pattern".to_string(), Value::String(pattern));
        }
        if let Some(properties) = obj.get("properties").and_then(Value::as_object) {
            let mut converted = Map::new();
            for (name, property) in properties {
                let mut c = self.convert(property);
                if self.implicit_nullable {
                    c = allow_null(c);
                }
                converted.insert(name.clone(), c);
            }
            out.insert("properties".to_string(), Value::Object(converted));
        }
        match obj.get("additionalProperties") {
            Some(Value::Bool(b)) => {
                out.insert("additionalProperties".to_string(), Value::Bool(*b));
            }
            Some(v @ Value::Object(_)) => {
                let c = self.convert(v);
                out.insert("additionalProperties".to_string(), c);
            }
            _ => {}
        }
        if let Some(items) = obj.get("items").filter(|v| v.is_object() || v.is_boolean()) {
            let c = self.convert(items);
            out.insert("items".to_string(), c);
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(list) = obj
                .get(key)
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
            {
                let converted: Vec<Value> = list.iter().map(|s| self.convert(s)).collect();
                out.insert(key.to_string(), Value::Array(converted));
            }
        }
        if let Some(not) = obj.get("not").filter(|v| v.is_object() || v.is_boolean()) {
            let c = self.convert(not);
            out.insert("not".to_string(), c);
        }
        if let Some(required) = obj.get("required").and_then(Value::as_array) {
            let properties = obj.get("properties").and_then(Value::as_object);
            let kept: Vec<Value> = required
                .iter()
                .filter_map(Value::as_str)
                .filter(|name| {
                    let Some(property) = properties.and_then(|p| p.get(*name)) else {
                        return true;
                    };
                    match self.mode {
                        Mode::Request => !self.has_flag(property, "readOnly"),
                        Mode::Response => !self.has_flag(property, "writeOnly"),
                        Mode::Neutral => true,
                    }
                })
                .map(|name| Value::String(name.to_string()))
                .collect();
            if !kept.is_empty() {
                out.insert("required".to_string(), Value::Array(kept));
            }
        }

        let converted = Value::Object(out);
        if nullable {
            allow_null(converted)
        } else {
            converted
        }
    }

    fn convert_ref(&mut self, reference: &str) -> Value {
        if let Some(rest) = reference.strip_prefix("#/components/schemas/") {
            let name = unescape_pointer_token(&percent_decode(rest));
            if !rest.contains('/') && self.schemas.is_some_and(|s| s.contains_key(&name)) {
                if !self.done.contains_key(&name) {
                    self.pending.insert(name.clone());
                }
                return json!({ "$ref": format!("#/$defs/{rest}") });
            }
        }
        if reference.starts_with('#')
            && self.depth < MAX_INLINE_DEPTH
            && let Some(target) = resolve_local(self.doc, reference)
        {
            self.depth += 1;
            let converted = self.convert(target);
            self.depth -= 1;
            return converted;
        }
        // External, dangling or too deep: accept anything.
        json!({})
    }

    /// `readOnly`/`writeOnly` on the property itself or on its `$ref` target.
    fn has_flag(&self, property: &Value, flag: &str) -> bool {
        let mut current = property;
        for _ in 0..16 {
            if current.get(flag) == Some(&Value::Bool(true)) {
                return true;
            }
            match current
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| resolve_local(self.doc, r))
            {
                Some(target) => current = target,
                None => return false,
            }
        }
        false
    }
}

/// Make a converted schema also accept `null`.
fn allow_null(schema: Value) -> Value {
    let Value::Object(mut map) = schema else {
        return schema;
    };
    let composite = ["$ref", "allOf", "anyOf", "oneOf", "not", "const"]
        .iter()
        .any(|k| map.contains_key(*k));
    if !composite {
        let type_ok = match map.get_mut("type") {
            None => true,
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                map.insert("type".to_string(), json!([t, "null"]));
                true
            }
            Some(Value::Array(types)) => {
                if !types.iter().any(|t| t == "null") {
                    types.push(json!("null"));
                }
                true
            }
            Some(_) => false,
        };
        if type_ok {
            if let Some(Value::Array(values)) = map.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
            return Value::Object(map);
        }
    }
    json!({ "anyOf": [{ "type": "null" }, Value::Object(map)], NULLABLE_MARK: true })
}

/// Marks the `anyOf` wrappers made by [`allow_null`] (unknown keywords are
/// ignored by JSON Schema 2020-12).
const NULLABLE_MARK: &str = "x-oas-nullable";

/// If `schema_path` (an evaluation path such as
/// `/properties/list/items/$ref/properties/status/anyOf`) ends at one of our
/// nullable wrappers, return its non-null branch.
fn nullable_branch<'a>(root: &'a Value, schema_path: &str) -> Option<&'a Value> {
    let path = schema_path.strip_suffix("/anyOf")?;
    let mut node = root;
    for token in path.split('/').skip(1) {
        let token = unescape_pointer_token(token);
        node = if token == "$ref" {
            let reference = node.get("$ref")?.as_str()?;
            resolve_local(root, reference)?
        } else if let Value::Array(items) = node {
            items.get(token.parse::<usize>().ok()?)?
        } else {
            node.get(&token)?
        };
    }
    if node.get(NULLABLE_MARK) != Some(&Value::Bool(true)) {
        return None;
    }
    node.get("anyOf")?.get(1)
}

/// OAS patterns are ECMA-262 regexes; vendors often write Ruby/PCRE ones and
/// mean them case-insensitively. Returns `None` for a pattern that cannot be
/// compiled (it is then not asserted).
fn translate_pattern(pattern: &str) -> Option<String> {
    let translated = pattern
        .replace(r"\h", "[0-9A-Fa-f]")
        .replace(r"\A", "^")
        .replace(r"\z", "$")
        .replace(r"\Z", "$");
    let translated = format!("(?i){translated}");
    jsonschema::draft202012::options()
        .build(&json!({ "pattern": translated }))
        .ok()
        .map(|_| translated)
}

// ------------------------------------------------------------------ helpers

fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence == "text/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn resolve_local<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let fragment = reference.strip_prefix('#')?;
    if fragment.is_empty() {
        return Some(doc);
    }
    doc.pointer(&percent_decode(fragment))
}

fn unescape_pointer_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Drop scheme/host, query and fragment.
fn strip_to_path(concrete: &str) -> &str {
    let mut path = concrete;
    if let Some(idx) = path.find("://") {
        let after = &path[idx + 3..];
        path = after.find('/').map_or("/", |slash| &after[slash..]);
    }
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

fn strip_prefix<'a>(path: &'a str, prefix: &str) -> &'a str {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return path;
    }
    let prefix_with_slash = if prefix.starts_with('/') {
        prefix.to_string()
    } else {
        format!("/{prefix}")
    };
    match path.strip_prefix(prefix_with_slash.as_str()) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Per-segment score (3 exact literal, 2 literal ignoring case, 1 partial
/// template like `{id}.json`, 0 whole `{param}`), or `None` if it does not match.
fn score_template(template: &str, segments: &[&str]) -> Option<Vec<u8>> {
    let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    if parts.len() != segments.len() {
        return None;
    }
    parts
        .iter()
        .zip(segments)
        .map(|(part, segment)| score_segment(part, segment))
        .collect()
}

fn score_segment(part: &str, segment: &str) -> Option<u8> {
    if !part.contains('{') {
        return if part == segment {
            Some(3)
        } else if part.eq_ignore_ascii_case(segment) {
            Some(2)
        } else {
            None
        };
    }
    if part.starts_with('{') && part.ends_with('}') && part.matches('{').count() == 1 {
        return (!segment.is_empty()).then_some(0);
    }
    // Partial template: literal text before the first `{` and after the last `}`.
    let head = &part[..part.find('{').unwrap_or(0)];
    let tail = &part[part.rfind('}').map_or(part.len(), |i| i + 1)..];
    (segment.len() > head.len() + tail.len()
        && segment.starts_with(head)
        && segment.ends_with(tail))
    .then_some(1)
}

fn yaml_to_json(value: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, value) in mapping {
                map.insert(yaml_key_to_string(key), yaml_to_json(value));
            }
            Value::Object(map)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn yaml_key_to_string(key: serde_yaml_ng::Value) -> String {
    use serde_yaml_ng::Value as Y;
    match key {
        Y::String(s) => s,
        Y::Number(n) => n.to_string(),
        Y::Bool(b) => b.to_string(),
        Y::Null => "null".to_string(),
        Y::Tagged(tagged) => yaml_key_to_string(tagged.value),
        other => yaml_to_json(other).to_string(),
    }
}
