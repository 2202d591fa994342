//! A subset of Go's `text/template`, enough for docker-style `--format`:
//! `{{.Field.Sub}}`, `{{json .}}`, `{{if}}/{{else if}}/{{else}}/{{end}}`,
//! `{{range}}` (with `$i, $v :=`), `{{with}}`, variables, pipelines,
//! parentheses, `{{- -}}` trimming, comments, and the functions docker
//! registers (`json`, `join`, `split`, `lower`, `upper`, `title`, `pad`,
//! `truncate`) plus Go's builtins (`and`, `or`, `not`, `eq`, `ne`, `lt`,
//! `le`, `gt`, `ge`, `len`, `index`, `print`, `printf`, `println`).
//!
//! Data is a `serde_json::Value`. Values print as Go prints them: maps as
//! `map[k:v]`, arrays as `[a b]`, objects whose keys all start with an
//! upper-case letter (Go structs) as `{v1 v2}`; missing fields print as "".

use serde_json::{Map, Value};

use crate::json::{self, JsonExt};

#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipeline {
    /// Variables declared (`$x :=`) or assigned (`$x =`).
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Operand>,
}

#[derive(Debug, Clone)]
enum Operand {
    /// `.` (empty path) or `.A.B`.
    Field(Vec<String>),
    /// `$` / `$x`, then fields.
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    Str(String),
    Num(String),
    Bool(bool),
    Nil,
    /// `( pipeline )`, then fields.
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    /// `.Name`; the flag says it follows the previous term with no space
    /// (`$x.A`, `(…).A`, `.A.B`), so it continues a field chain.
    Field(String, bool),
    Var(String),
    Ident(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

pub fn parse(src: &str) -> Result<Template, String> {
    let items = split_actions(src)?;
    let mut pos = 0;
    let (nodes, end) = parse_list(&items, &mut pos)?;
    match end {
        End::Eof => Ok(Template { nodes }),
        End::End => Err("unexpected {{end}}".into()),
        End::Else(_) => Err("unexpected {{else}}".into()),
    }
}

impl Template {
    /// Executes the template with `data` as `.` and `$`.
    pub fn execute(&self, data: &Value) -> Result<String, String> {
        self.run(data, false)
    }

    /// Executes the template over a header context: docker's header
    /// functions (`json`, `join`, `split`, `title`, `lower`, `upper`,
    /// `truncate`) return their first argument unchanged.
    pub fn execute_header(&self, data: &Value) -> Result<String, String> {
        self.run(data, true)
    }

    /// Executes the template with `data`, with `funcs` looked up before
    /// the built-in functions (SwarmKit's `env`, `secret`, `config`).
    pub fn execute_with(&self, data: &Value, funcs: Funcs<'_>) -> Result<String, String> {
        let mut st =
            State { funcs: Some(funcs), out: String::new(), vars: vec![("$".to_string(), data.clone())], header: false, iterations: 0 };
        st.walk(&self.nodes, data)?;
        Ok(st.out)
    }

    fn run(&self, data: &Value, header: bool) -> Result<String, String> {
        let mut st = State { funcs: None, out: String::new(), vars: vec![("$".to_string(), data.clone())], header, iterations: 0 };
        st.walk(&self.nodes, data)?;
        Ok(st.out)
    }
}

/// Parses and executes in one go.
#[allow(dead_code)]
pub fn render(src: &str, data: &Value) -> Result<String, String> {
    parse(src)?.execute(data)
}

// ---------------------------------------------------------------- lexing

enum Item {
    Text(String),
    Action(Vec<Tok>),
}

fn split_actions(src: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let mut inner = &rest[start + 2..];
        let trim_before = inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n");
        if trim_before {
            text = text.trim_end_matches(is_space);
            inner = &inner[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let (toks, consumed, trim_after) = lex_action(inner)?;
        trim_next = trim_after;
        if let Some(toks) = toks {
            items.push(Item::Action(toks));
        }
        rest = &inner[consumed..];
    }
    let mut text = rest;
    if trim_next {
        text = text.trim_start_matches(is_space);
    }
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

/// Lexes one action body (after `{{` and a left trim marker). Returns the
/// tokens (None for a comment), the bytes consumed up to and including `}}`
/// and whether a right trim marker was present.
fn lex_action(s: &str) -> Result<(Option<Vec<Tok>>, usize, bool), String> {
    let b = s.as_bytes();
    let mut i = 0;
    // comments: {{/* ... */}}
    let lead = s.len() - s.trim_start_matches(is_space).len();
    if s[lead..].starts_with("/*") {
        let end = s[lead..].find("*/").ok_or("unclosed comment")? + lead + 2;
        let after = &s[end..];
        let t = after.trim_start_matches(is_space);
        if let Some(r) = t.strip_prefix("-}}") {
            return Ok((None, s.len() - r.len(), true));
        }
        if let Some(r) = t.strip_prefix("}}") {
            return Ok((None, s.len() - r.len(), false));
        }
        return Err("comment ends before closing delimiter".into());
    }
    let mut toks = Vec::new();
    loop {
        if i >= b.len() {
            return Err("unclosed action".into());
        }
        let c = b[i];
        if is_space(c as char) {
            // right trim marker " -}}"
            let rest = &s[i..];
            let t = rest.trim_start_matches(is_space);
            if let Some(r) = t.strip_prefix("-}}") {
                return Ok((Some(toks), s.len() - r.len(), true));
            }
            i += 1;
            continue;
        }
        if s[i..].starts_with("}}") {
            return Ok((Some(toks), i + 2, false));
        }
        match c {
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if s[i..].starts_with(":=") => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'"' => {
                let mut out = String::new();
                i += 1;
                loop {
                    let ch = s[i..].chars().next().ok_or("unterminated quoted string")?;
                    i += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\n' => return Err("unterminated quoted string".into()),
                        '\\' => {
                            let e = s[i..].chars().next().ok_or("unterminated quoted string")?;
                            i += e.len_utf8();
                            out.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                '0' => '\0',
                                other => return Err(format!("unknown escape sequence: \\{other}")),
                            });
                        }
                        ch => out.push(ch),
                    }
                }
                toks.push(Tok::Str(out));
            }
            b'`' => {
                let end = s[i + 1..].find('`').ok_or("unterminated raw quoted string")?;
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j == start {
                    if j < b.len() && b[j].is_ascii_digit() {
                        return Err("bad number syntax".into());
                    }
                    toks.push(Tok::Dot);
                } else {
                    let joined = i > 0
                        && !is_space(b[i - 1] as char)
                        && matches!(toks.last(), Some(Tok::Field(..)) | Some(Tok::Var(_)) | Some(Tok::RParen));
                    toks.push(Tok::Field(s[start..j].to_string(), joined));
                }
                i = j;
            }
            b'$' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                toks.push(Tok::Var(s[i..j].to_string()));
                i = j;
            }
            b'-' | b'+' | b'0'..=b'9' => {
                let mut j = i + 1;
                let hex = s[i..].trim_start_matches(['-', '+']).starts_with("0x");
                while j < b.len()
                    && (b[j].is_ascii_alphanumeric()
                        || b[j] == b'.'
                        || b[j] == b'_'
                        // An exponent's sign: 1e-5.
                        || (matches!(b[j], b'-' | b'+') && !hex && matches!(b[j - 1], b'e' | b'E')))
                {
                    j += 1;
                }
                toks.push(Tok::Num(s[i..j].to_string()));
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                toks.push(Tok::Ident(s[i..j].to_string()));
                i = j;
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected {ch:?} in command"));
            }
        }
    }
}

// ---------------------------------------------------------------- parsing

#[allow(clippy::enum_variant_names)]
enum End {
    Eof,
    End,
    /// `{{else}}` or `{{else if ...}}` / `{{else with ...}}` (the rest of the tokens).
    Else(Vec<Tok>),
}

fn parse_list(items: &[Item], pos: &mut usize) -> Result<(Vec<Node>, End), String> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        match item {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(toks) => {
                let kw = match toks.first() {
                    Some(Tok::Ident(k)) => k.as_str(),
                    _ => "",
                };
                match kw {
                    "end" => return Ok((nodes, End::End)),
                    "else" => return Ok((nodes, End::Else(toks[1..].to_vec()))),
                    "if" | "with" | "range" => nodes.push(parse_control(kw, &toks[1..], items, pos)?),
                    "define" | "template" | "block" | "break" | "continue" => {
                        return Err(format!("{{{{{kw}}}}} is not supported in this format"));
                    }
                    _ => {
                        if toks.is_empty() {
                            return Err("missing value for command".into());
                        }
                        nodes.push(Node::Action(parse_pipeline(toks)?));
                    }
                }
            }
        }
    }
    Ok((nodes, End::Eof))
}

fn parse_control(kw: &str, toks: &[Tok], items: &[Item], pos: &mut usize) -> Result<Node, String> {
    if toks.is_empty() {
        return Err(format!("missing value for {kw}"));
    }
    let pipe = parse_pipeline(toks)?;
    let (body, end) = parse_list(items, pos)?;
    let else_body = match end {
        End::Eof => return Err(format!("unexpected EOF: missing {{{{end}}}} for {kw}")),
        End::End => Vec::new(),
        End::Else(rest) => {
            if rest.is_empty() {
                let (eb, end2) = parse_list(items, pos)?;
                match end2 {
                    End::End => eb,
                    End::Eof => return Err(format!("unexpected EOF: missing {{{{end}}}} for {kw}")),
                    End::Else(_) => return Err("expected end; found {{else}}".into()),
                }
            } else {
                // `else if` / `else with`: a nested control that consumes the shared {{end}}.
                let nested_kw = match rest.first() {
                    Some(Tok::Ident(k)) if k == "if" || k == "with" => k.clone(),
                    _ => return Err("unexpected tokens after else".into()),
                };
                vec![parse_control(&nested_kw, &rest[1..], items, pos)?]
            }
        }
    };
    Ok(match kw {
        "if" => Node::If(pipe, body, else_body),
        "with" => Node::With(pipe, body, else_body),
        _ => Node::Range(pipe, body, else_body),
    })
}

fn parse_pipeline(toks: &[Tok]) -> Result<Pipeline, String> {
    let mut decl = Vec::new();
    let mut assign = false;
    let mut rest = toks;
    // `$x :=`, `$k, $v :=`, `$x =`
    let mut k = 0;
    let mut vars = Vec::new();
    while let Some(Tok::Var(v)) = rest.get(k) {
        vars.push(v.clone());
        match rest.get(k + 1) {
            Some(Tok::Comma) => k += 2,
            Some(Tok::Declare) | Some(Tok::Assign) => {
                assign = rest[k + 1] == Tok::Assign;
                decl = vars.clone();
                rest = &rest[k + 2..];
                break;
            }
            _ => break,
        }
    }
    let mut cmds = Vec::new();
    let mut p = 0;
    loop {
        let (cmd, next) = parse_command(rest, p)?;
        cmds.push(cmd);
        p = next;
        match rest.get(p) {
            None => break,
            Some(Tok::Pipe) => p += 1,
            Some(t) => return Err(format!("unexpected {t:?} in operand")),
        }
    }
    Ok(Pipeline { decl, assign, cmds })
}

fn parse_command(toks: &[Tok], mut p: usize) -> Result<(Command, usize), String> {
    let mut args = Vec::new();
    while let Some(t) = toks.get(p) {
        if matches!(t, Tok::Pipe | Tok::RParen) {
            break;
        }
        let (op, next) = parse_operand(toks, p)?;
        args.push(op);
        p = next;
    }
    if args.is_empty() {
        return Err("missing command".into());
    }
    Ok((Command { args }, p))
}

/// Collects a chain of joined fields starting at `p`.
fn fields_after(toks: &[Tok], mut p: usize) -> (Vec<String>, usize) {
    let mut fields = Vec::new();
    while let Some(Tok::Field(f, true)) = toks.get(p) {
        fields.push(f.clone());
        p += 1;
    }
    (fields, p)
}

fn parse_operand(toks: &[Tok], p: usize) -> Result<(Operand, usize), String> {
    match &toks[p] {
        Tok::Dot => Ok((Operand::Field(Vec::new()), p + 1)),
        Tok::Field(first, _) => {
            let (mut rest, n) = fields_after(toks, p + 1);
            rest.insert(0, first.clone());
            Ok((Operand::Field(rest), n))
        }
        Tok::Var(v) => {
            let (f, n) = fields_after(toks, p + 1);
            Ok((Operand::Var(v.clone(), f), n))
        }
        Tok::Ident(id) => Ok((
            match id.as_str() {
                "true" => Operand::Bool(true),
                "false" => Operand::Bool(false),
                "nil" => Operand::Nil,
                _ => Operand::Ident(id.clone()),
            },
            p + 1,
        )),
        Tok::Str(s) => Ok((Operand::Str(s.clone()), p + 1)),
        Tok::Num(n) => Ok((Operand::Num(n.clone()), p + 1)),
        Tok::LParen => {
            // find the matching paren
            let mut depth = 0;
            let mut q = p;
            loop {
                match toks.get(q) {
                    Some(Tok::LParen) => depth += 1,
                    Some(Tok::RParen) => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Some(_) => {}
                    None => return Err("unclosed left paren".into()),
                }
                q += 1;
            }
            let inner = parse_pipeline(&toks[p + 1..q])?;
            let (f, n) = fields_after(toks, q + 1);
            Ok((Operand::Sub(Box::new(inner), f), n))
        }
        t => Err(format!("unexpected {t:?} in operand")),
    }
}

// ---------------------------------------------------------------- execution

/// A caller's own functions: `Some` answers for a name it knows.
pub type Funcs<'f> = &'f dyn Fn(&str, &[Value]) -> Option<Result<Value, String>>;

struct State<'f> {
    funcs: Option<Funcs<'f>>,
    out: String,
    vars: Vec<(String, Value)>,
    header: bool,
    /// `range` iterations so far, across all loops of this execution.
    iterations: usize,
}

/// Bounds on one execution, far above any real `--format` (Go has none,
/// but a few characters such as `{{range 99999999999}}` must not hang the
/// CLI or exhaust its memory).
const MAX_RANGE_ITERATIONS: usize = 1 << 20;
const MAX_OUTPUT: usize = 64 << 20;
/// Go's fmt refuses widths and precisions past this (`tooLarge`).
const MAX_FMT_NUM: usize = 1_000_000;

impl State<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), String> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&go_print(&v));
                    }
                    if self.out.len() > MAX_OUTPUT {
                        return Err(format!("template output passes {MAX_OUTPUT} bytes"));
                    }
                }
                Node::If(p, body, else_body) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let r = if truthy(&v) { self.walk(body, dot) } else { self.walk(else_body, dot) };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::With(p, body, else_body) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let r = if truthy(&v) { self.walk(body, &v) } else { self.walk(else_body, dot) };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::Range(p, body, else_body) => {
                    let mark = self.vars.len();
                    let mut plain = p.clone();
                    plain.decl.clear();
                    let v = self.pipeline(&plain, dot)?;
                    // Lazily: `range N` may name more iterations than memory holds.
                    let (len, entries): (usize, Box<dyn Iterator<Item = (Value, Value)>>) = match &v {
                        Value::Array(a) => (a.len(), Box::new(a.iter().enumerate().map(|(i, e)| (Value::from(i), e.clone())))),
                        Value::Object(m) => {
                            let mut m: Vec<_> = m.iter().map(|(k, e)| (Value::String(k.clone()), e.clone())).collect();
                            m.sort_by(|a, b| a.0.str().cmp(b.0.str()));
                            (m.len(), Box::new(m.into_iter()))
                        }
                        Value::Null => (0, Box::new(std::iter::empty())),
                        Value::Number(n) => {
                            let count =
                                n.as_u64().and_then(|c| usize::try_from(c).ok()).ok_or_else(|| format!("range can't iterate over {n}"))?;
                            (count, Box::new((0..count).map(|i| (Value::from(i), Value::from(i)))))
                        }
                        other => return Err(format!("range can't iterate over {}", go_print(other))),
                    };
                    if len == 0 {
                        self.walk(else_body, dot)?;
                    } else {
                        for (k, e) in entries {
                            self.iterations += 1;
                            if self.iterations > MAX_RANGE_ITERATIONS {
                                return Err(format!("range: more than {MAX_RANGE_ITERATIONS} iterations"));
                            }
                            let inner = self.vars.len();
                            match p.decl.len() {
                                0 => {}
                                1 => self.vars.push((p.decl[0].clone(), e.clone())),
                                _ => {
                                    self.vars.push((p.decl[0].clone(), k));
                                    self.vars.push((p.decl[1].clone(), e.clone()));
                                }
                            }
                            let r = self.walk(body, &e);
                            self.vars.truncate(inner);
                            r?;
                        }
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, String> {
        let mut val: Option<Value> = None;
        for cmd in &p.cmds {
            val = Some(self.command(cmd, dot, val)?);
        }
        let v = val.unwrap_or(Value::Null);
        if !p.decl.is_empty() {
            if p.assign {
                let name = &p.decl[0];
                let slot = self.vars.iter_mut().rev().find(|(n, _)| n == name).ok_or(format!("undefined variable: {name}"))?;
                slot.1 = v.clone();
            } else {
                self.vars.push((p.decl[p.decl.len() - 1].clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(&mut self, cmd: &Command, dot: &Value, piped: Option<Value>) -> Result<Value, String> {
        if let Operand::Ident(name) = &cmd.args[0] {
            let mut args = Vec::with_capacity(cmd.args.len());
            // `and` / `or` short-circuit in Go; evaluating eagerly is fine for
            // side-effect-free data.
            for a in &cmd.args[1..] {
                args.push(self.operand(a, dot)?);
            }
            if let Some(v) = piped {
                args.push(v);
            }
            return self.call(name, args);
        }
        if let (Operand::Field(path), true) = (&cmd.args[0], cmd.args.len() > 1 || piped.is_some()) {
            if let Some(v) = self.method_call(path, &cmd.args[1..], dot, piped.clone())? {
                return Ok(v);
            }
        }
        if cmd.args.len() > 1 || piped.is_some() {
            return Err(format!("can't give argument to non-function {}", describe(&cmd.args[0])));
        }
        self.operand(&cmd.args[0], dot)
    }

    /// A method with one string argument, as docker's contexts have
    /// (`{{.Label "com.example"}}`): the data holds it as a map under the
    /// hidden key [`METHOD_PREFIX`]`Name`; a missing entry is "". In a
    /// header, docker's `SubHeaderContext.Label`: the last dotted part, with
    /// `-` and `_` as spaces.
    fn method_call(&mut self, path: &[String], rest: &[Operand], dot: &Value, piped: Option<Value>) -> Result<Option<Value>, String> {
        let Some((name, parent)) = path.split_last() else { return Ok(None) };
        let mut args = Vec::new();
        for a in rest {
            args.push(self.operand(a, dot)?);
        }
        args.extend(piped);
        let base = field_path(dot, parent)?;
        if self.header && name == "Label" && args.len() == 1 {
            let last = args[0].str().rsplit('.').next().unwrap_or("").replace(['-', '_'], " ");
            return Ok(Some(Value::String(last)));
        }
        let key = format!("{METHOD_PREFIX}{name}");
        if !base.has(&key) {
            return Ok(None);
        }
        let hidden = &base[&key];
        if args.len() != 1 {
            return Err(format!("wrong number of args for {name}: want 1 got {}", args.len()));
        }
        Ok(Some(Value::String(hidden[args[0].str()].str().to_string())))
    }

    fn operand(&mut self, op: &Operand, dot: &Value) -> Result<Value, String> {
        Ok(match op {
            Operand::Field(path) => field_path(dot, path)?,
            Operand::Var(name, path) => {
                let v =
                    self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()).ok_or(format!("undefined variable: {name}"))?;
                field_path(&v, path)?
            }
            Operand::Ident(name) => self.call(name, Vec::new())?,
            Operand::Str(s) => Value::String(s.clone()),
            Operand::Num(n) => number_literal(n)?,
            Operand::Bool(b) => Value::Bool(*b),
            Operand::Nil => Value::Null,
            Operand::Sub(p, path) => {
                let v = self.pipeline(p, dot)?;
                field_path(&v, path)?
            }
        })
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let want = |n: usize| -> Result<(), String> {
            if args.len() != n {
                Err(format!("wrong number of args for {name}: want {n} got {}", args.len()))
            } else {
                Ok(())
            }
        };
        if let Some(answer) = self.funcs.and_then(|f| f(name, &args)) {
            return answer;
        }
        if self.header && matches!(name, "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate") {
            return args.into_iter().next().ok_or(format!("wrong number of args for {name}"));
        }
        Ok(match name {
            "json" => {
                want(1)?;
                Value::String(json_text(&args[0], false))
            }
            "split" => {
                want(2)?;
                let s = go_print(&args[0]);
                let sep = go_print(&args[1]);
                let parts: Vec<String> = if sep.is_empty() {
                    s.chars().map(|c| c.to_string()).collect()
                } else {
                    s.split(sep.as_str()).map(str::to_string).collect()
                };
                Value::from(parts)
            }
            "join" => {
                want(2)?;
                let sep = go_print(&args[1]);
                match &args[0] {
                    Value::Null => Value::String(String::new()),
                    Value::Array(a) => Value::String(a.iter().map(go_print).collect::<Vec<_>>().join(&sep)),
                    Value::Object(m) => {
                        let mut vals: Vec<String> = m.iter().map(|(_, v)| go_print(v)).collect();
                        vals.sort();
                        Value::String(vals.join(&sep))
                    }
                    other => return Err(format!("expected slice, got {}", go_print(other))),
                }
            }
            "lower" => {
                want(1)?;
                Value::String(go_print(&args[0]).to_lowercase())
            }
            "upper" => {
                want(1)?;
                Value::String(go_print(&args[0]).to_uppercase())
            }
            "title" => {
                want(1)?;
                Value::String(title(&go_print(&args[0])))
            }
            "pad" => {
                want(3)?;
                let s = go_print(&args[0]);
                if s.is_empty() {
                    Value::String(s)
                } else {
                    let a = int_arg(&args[1])?.max(0) as usize;
                    let b = int_arg(&args[2])?.max(0) as usize;
                    if a.max(b) > MAX_FMT_NUM {
                        return Err(format!("error calling pad: {} spaces is too many", a.max(b)));
                    }
                    Value::String(format!("{}{}{}", " ".repeat(a), s, " ".repeat(b)))
                }
            }
            "truncate" => {
                want(2)?;
                let s = go_print(&args[0]);
                let n = int_arg(&args[1])?.max(0) as usize;
                Value::String(if s.len() < n { s } else { s.chars().take(n).collect() })
            }
            "len" => {
                want(1)?;
                Value::from(match &args[0] {
                    Value::String(s) => s.len(),
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    Value::Null => 0,
                    other => return Err(format!("len of type {}", kind(other))),
                })
            }
            "index" => {
                if args.is_empty() {
                    return Err("wrong number of args for index".into());
                }
                let mut v = args[0].clone();
                for k in &args[1..] {
                    v = match (&v, k) {
                        (Value::Object(_), k) => v[&go_print(k)].clone(),
                        (Value::Array(a), Value::Number(_)) => {
                            let i = int_arg(k)?;
                            a.get(usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?)
                                .cloned()
                                .ok_or(format!("index out of range: {i}"))?
                        }
                        (Value::Null, _) => Value::Null,
                        (other, _) => return Err(format!("can't index item of type {}", kind(other))),
                    };
                }
                v
            }
            "not" => {
                want(1)?;
                Value::Bool(!truthy(&args[0]))
            }
            "html" => Value::String(html_escape(&go_sprint(&args))),
            "urlquery" => Value::String(query_escape(&go_sprint(&args))),
            "js" => Value::String(js_escape(&go_sprint(&args))),
            "slice" => {
                let Some(item) = args.first() else { return Err("wrong number of args for slice".into()) };
                let idx: Vec<usize> = args[1..]
                    .iter()
                    .map(|a| int_arg(a).and_then(|i| usize::try_from(i).map_err(|_| format!("index out of range: {i}"))))
                    .collect::<Result<_, _>>()?;
                let len = match item {
                    Value::String(s) => s.len(),
                    Value::Array(a) => a.len(),
                    other => return Err(format!("can't slice item of type {}", kind(other))),
                };
                let (from, to) = match idx.as_slice() {
                    [] => (0, len),
                    [i] => (*i, len),
                    [i, j] => (*i, *j),
                    _ => return Err("too many slice indexes".into()),
                };
                if from > to || to > len {
                    return Err(format!("slice index out of range: {from}:{to} of {len}"));
                }
                match item {
                    Value::String(s) => Value::String(s.get(from..to).ok_or("slice splits a character")?.to_string()),
                    Value::Array(a) => Value::Array(a[from..to].to_vec()),
                    _ => unreachable!("checked above"),
                }
            }
            "and" => {
                if args.is_empty() {
                    return Err("wrong number of args for and".into());
                }
                args.iter().find(|a| !truthy(a)).unwrap_or(args.last().unwrap()).clone()
            }
            "or" => {
                if args.is_empty() {
                    return Err("wrong number of args for or".into());
                }
                args.iter().find(|a| truthy(a)).unwrap_or(args.last().unwrap()).clone()
            }
            "eq" => {
                if args.len() < 2 {
                    return Err("missing argument for comparison".into());
                }
                Value::Bool(args[1..].iter().any(|b| equal(&args[0], b)))
            }
            "ne" => {
                want(2)?;
                Value::Bool(!equal(&args[0], &args[1]))
            }
            "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let ord = compare(&args[0], &args[1])?;
                Value::Bool(match name {
                    "lt" => ord.is_lt(),
                    "le" => ord.is_le(),
                    "gt" => ord.is_gt(),
                    _ => ord.is_ge(),
                })
            }
            "print" => Value::String(go_sprint(&args)),
            "println" => {
                let mut s = args.iter().map(go_print).collect::<Vec<_>>().join(" ");
                s.push('\n');
                Value::String(s)
            }
            "printf" => {
                if args.is_empty() {
                    return Err("wrong number of args for printf".into());
                }
                Value::String(sprintf(&go_print(&args[0]), &args[1..]))
            }
            _ => return Err(format!("function \"{name}\" not defined")),
        })
    }
}

fn describe(op: &Operand) -> String {
    match op {
        Operand::Field(p) if p.is_empty() => ".".into(),
        Operand::Field(p) => format!(".{}", p.join(".")),
        Operand::Var(v, _) => v.clone(),
        Operand::Str(s) => format!("{s:?}"),
        Operand::Num(n) => n.clone(),
        _ => "value".into(),
    }
}

fn number_literal(n: &str) -> Result<Value, String> {
    let bad = || format!("bad number syntax: {n:?}");
    match n.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).map(Value::from).map_err(|_| bad()),
        None => json::number(n).ok_or_else(bad),
    }
}

fn int_arg(v: &Value) -> Result<i64, String> {
    match v {
        // A float is truncated and an integer past i64 saturates, as this
        // engine has always done (Go would refuse both).
        Value::Number(n) => Ok(n.as_i64().unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64)),
        other => Err(format!("expected integer; found {}", go_print(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn field_path(v: &Value, path: &[String]) -> Result<Value, String> {
    let mut cur = v;
    for f in path {
        cur = match cur {
            Value::Object(_) => &cur[f],
            Value::Null => return Ok(Value::Null),
            other => return Err(format!("can't evaluate field {f} in type {}", kind(other))),
        };
    }
    Ok(cur.clone())
}

/// Go's notion of truth for `if`, `with`, `and`, `or`, `not`.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_none_or(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty() || !looks_like_map(m),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).ok_or_else(|| "incompatible types for comparison".into())
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Objects that look like Go structs (every key starts with an upper-case
/// letter) print as `{v1 v2}`; others as `map[k:v]`.
fn looks_like_map(m: &Map<String, Value>) -> bool {
    m.is_empty() || !m.keys().all(|k| k.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
}

/// Prints a value as Go's `fmt.Print` would.
pub fn go_print(v: &Value) -> String {
    let mut s = String::new();
    go_print_into(&mut s, v);
    s
}

/// The prefix of the keys that hold one-argument methods (see
/// `method_call`); they are not data: `json` and printing skip them.
pub const METHOD_PREFIX: &str = "\u{1}";

/// The hidden key that marks one of docker's formatter contexts: `json`
/// prints it as Go's `json.Marshal` does (HTML characters escaped), where
/// docker's template function leaves plain data unescaped.
const MARSHAL_KEY: &str = "\u{1}MarshalJSON";

/// Marks `row` as a formatter context (see [`MARSHAL_KEY`]).
pub fn context(mut row: Value) -> Value {
    row.set(MARSHAL_KEY, Value::Null);
    row
}

/// Compact JSON as docker's `json` function writes it: formatter contexts
/// (at any depth, and all they hold) through `json.Marshal`, which escapes
/// HTML characters, the rest unescaped; the hidden method keys left out.
fn json_text(v: &Value, html: bool) -> String {
    match v {
        Value::Object(m) => {
            let html = html || m.contains_key(MARSHAL_KEY);
            let members: Vec<String> = m
                .iter()
                .filter(|(k, _)| !k.starts_with(METHOD_PREFIX))
                .map(|(k, e)| format!("{}:{}", json::go_json(k, html), json_text(e, html)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(|e| json_text(e, html)).collect::<Vec<_>>().join(",")),
        other => json::go_json(other, html),
    }
}

fn without_methods(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.iter().any(|(k, _)| k.starts_with(METHOD_PREFIX)) => {
            Value::Object(m.iter().filter(|(k, _)| !k.starts_with(METHOD_PREFIX)).map(|(k, e)| (k.clone(), e.clone())).collect())
        }
        other => other.clone(),
    }
}

fn go_print_into(out: &mut String, v: &Value) {
    let stripped;
    let v = if matches!(v, Value::Object(m) if m.iter().any(|(k, _)| k.starts_with(METHOD_PREFIX))) {
        stripped = without_methods(v);
        &stripped
    } else {
        v
    };
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_print_nested(out, e);
            }
            out.push(']');
        }
        Value::Object(m) if looks_like_map(m) => {
            out.push_str("map[");
            let mut sorted: Vec<(&String, &Value)> = m.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            for (i, (k, e)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                go_print_nested(out, e);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (_, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_print_nested(out, e);
            }
            out.push('}');
        }
    }
}

fn go_print_nested(out: &mut String, v: &Value) {
    if v.is_null() {
        out.push_str("<nil>");
    } else {
        go_print_into(out, v);
    }
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut s = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            s.push(' ');
        }
        s.push_str(&go_print(a));
    }
    s
}

/// Go's `html` function (`template.HTMLEscapeString`).
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`: the templates' `urlquery`, and the daemon's
/// log details.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `js` function (`template.JSEscapeString`).
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

/// A subset of Go's `fmt.Sprintf`: verbs `v s d o x X q t f e g %` with
/// flags `-0+`, width and precision, and Go's `%!verb(type=value)` for a
/// verb that does not fit its operand.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut argi = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus) = (false, false, false);
        while let Some(&f) = it.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            it.next();
        }
        // A runaway width or precision ends the formatting, as in Go.
        let Ok(width) = go_num(&mut it) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let Ok(p) = go_num(&mut it) else {
                out.push_str("%!(NOVERB)");
                break;
            };
            prec = Some(p.unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        // An integer operand (`int64` or `uint64` in Go), not a float.
        let int = arg.as_i64().map(i128::from).or(arg.as_u64().map(i128::from));
        let mut s = match (verb, int) {
            ('d', Some(n)) if plus && n >= 0 => format!("+{n}"),
            ('d', Some(n)) => n.to_string(),
            ('o', Some(n)) => {
                if n < 0 {
                    format!("-{:o}", n.unsigned_abs())
                } else {
                    format!("{n:o}")
                }
            }
            ('x' | 'X', Some(n)) => {
                let hex = if n < 0 { format!("-{:x}", n.unsigned_abs()) } else { format!("{n:x}") };
                if verb == 'X' {
                    hex.to_uppercase()
                } else {
                    hex
                }
            }
            ('x' | 'X', _) if matches!(arg, Value::String(_)) => {
                let hex: String = go_print(arg).bytes().map(|b| format!("{b:02x}")).collect();
                if verb == 'X' {
                    hex.to_uppercase()
                } else {
                    hex
                }
            }
            // Integers too: a float field that holds a whole number comes
            // from the daemon's JSON without a decimal point.
            ('f' | 'F' | 'e' | 'E' | 'g' | 'G', _) if matches!(arg, Value::Number(_)) => {
                let f = arg.as_f64().unwrap_or(0.0);
                match verb {
                    'e' | 'E' => {
                        let e = go_exp(f, prec.unwrap_or(6));
                        if verb == 'E' {
                            e.to_uppercase()
                        } else {
                            e
                        }
                    }
                    'g' => go_shortest(f),
                    'G' => go_shortest(f).to_uppercase(),
                    // Rust's formatter takes at most u16::MAX digits; an
                    // f64's exact expansion ends within 1100, zeros follow.
                    _ => {
                        let p = prec.unwrap_or(6);
                        let mut s = format!("{:.*}", p.min(1100), f);
                        if p > 1100 && f.is_finite() {
                            s.extend(std::iter::repeat_n('0', p - 1100));
                        }
                        s
                    }
                }
            }
            ('q', _) if matches!(arg, Value::String(_)) => json::go_json(&go_print(arg), false),
            // Go applies the verb to each element of a slice.
            ('q', _) if matches!(arg, Value::Array(a) if a.iter().all(|e| matches!(e, Value::String(_)))) => {
                let quoted: Vec<String> = arg.items().iter().map(|e| sprintf("%q", std::slice::from_ref(e))).collect();
                format!("[{}]", quoted.join(" "))
            }
            ('t', _) if matches!(arg, Value::Bool(_)) => go_print(arg),
            ('s', _) if !matches!(arg, Value::Number(_) | Value::Bool(_)) => {
                let mut s = go_print(arg);
                if let Some(p) = prec {
                    s = s.chars().take(p).collect();
                }
                s
            }
            ('v', _) => {
                let mut s = go_print(arg);
                if let Some(p) = prec {
                    s = s.chars().take(p).collect();
                }
                s
            }
            // A verb that does not fit the operand, in Go's words.
            _ => format!("%!{verb}({})", typed(arg)),
        };
        if let Some(w) = width {
            let len = s.chars().count();
            if len < w {
                let pad = w - len;
                if left {
                    s.push_str(&" ".repeat(pad));
                } else if zero && matches!(verb, 'd' | 'f') {
                    let (sign, digits) = if s.starts_with('-') || s.starts_with('+') { s.split_at(1) } else { ("", s.as_str()) };
                    s = format!("{sign}{}{digits}", "0".repeat(pad));
                } else {
                    s = format!("{}{s}", " ".repeat(pad));
                }
            }
        }
        out.push_str(&s);
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        out.push_str(&args[argi..].iter().map(typed).collect::<Vec<_>>().join(", "));
        out.push(')');
    }
    out
}

/// An operand as Go's fmt names it in an error: `int=3`, `string=web`.
fn typed(v: &Value) -> String {
    let ty = match v {
        Value::Null => return "<nil>".into(),
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(a) if a.iter().all(|e| matches!(e, Value::String(_))) => "[]string",
        Value::Array(_) => "[]interface {}",
        Value::Object(m) if looks_like_map(m) => "map[string]interface {}",
        Value::Object(_) => "struct",
    };
    format!("{ty}={}", go_print(v))
}

/// Go's `%e`: `2.500000e+00` (at least two exponent digits).
fn go_exp(f: f64, prec: usize) -> String {
    go_exponent(format!("{:.*e}", prec.min(1100), f))
}

/// Rust's exponent (`2.5e21`, `1e-5`) written as Go writes it (`2.5e+21`,
/// `1e-05`).
fn go_exponent(s: String) -> String {
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Go's `%g` without a precision: the shortest form that reads back, with
/// an exponent below 1e-4 and from 1e21 on.
fn go_shortest(f: f64) -> String {
    let exp = if f == 0.0 || !f.is_finite() { 0 } else { f.abs().log10().floor() as i32 };
    if (-4..21).contains(&exp) {
        return format!("{f}");
    }
    // The shortest mantissa: Rust's `{:e}` gives it, as `2.5e21`.
    go_exponent(format!("{f:e}"))
}

/// Go's fmt `parsenum`: the digits at the cursor; `Err` once the number
/// passes a million before its last digit (Go's `tooLarge`).
fn go_num(it: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Option<usize>, ()> {
    let mut num = None;
    while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
        let n = num.unwrap_or(0);
        if n > MAX_FMT_NUM {
            return Err(());
        }
        num = Some(n * 10 + d as usize);
        it.next();
    }
    Ok(num)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Value {
        json::parse(
            r#"{"ID":"abc","Spec":{"Labels":{"zone":"b","app":"x"},"Role":"manager"},
               "Status":{"State":"ready","Addr":"10.0.0.1"},
               "List":["a","b"],"Num":3,"Empty":"","Nested":{"Swarm":{"LocalNodeState":"active"}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn fields_and_json() {
        let d = data();
        assert_eq!(render("{{.ID}}", &d).unwrap(), "abc");
        assert_eq!(render("{{.Spec.Role}} {{.Nested.Swarm.LocalNodeState}}", &d).unwrap(), "manager active");
        assert_eq!(render("{{.Spec.Labels}}", &d).unwrap(), "map[app:x zone:b]");
        assert_eq!(render("{{json .Spec.Labels}}", &d).unwrap(), r#"{"zone":"b","app":"x"}"#);
        assert_eq!(render("{{json .List}}", &d).unwrap(), r#"["a","b"]"#);
        assert_eq!(render("{{.Status}}", &d).unwrap(), "{ready 10.0.0.1}");
        assert_eq!(render("{{.List}}", &d).unwrap(), "[a b]");
        assert_eq!(render("{{.Missing}}|{{.Missing.Deeper}}", &d).unwrap(), "|");
        assert!(render("{{.ID.Sub}}", &d).is_err());
    }

    #[test]
    fn control_flow() {
        let d = data();
        assert_eq!(render("{{if .Empty}}y{{else}}n{{end}}", &d).unwrap(), "n");
        assert_eq!(render("{{if eq .Spec.Role \"worker\"}}w{{else if eq .Spec.Role \"manager\"}}m{{end}}", &d).unwrap(), "m");
        assert_eq!(render("{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}};{{end}}", &d).unwrap(), "app=x;zone=b;");
        assert_eq!(render("{{range .List}}<{{.}}>{{end}}", &d).unwrap(), "<a><b>");
        assert_eq!(render("{{range .Nope}}x{{else}}none{{end}}", &d).unwrap(), "none");
        assert_eq!(render("{{with .Status}}{{.State}}{{end}}", &d).unwrap(), "ready");
        assert_eq!(render("{{$x := .ID}}{{$x}}-{{$.Num}}", &d).unwrap(), "abc-3");
        assert_eq!(render("{{range .List}}{{$.ID}}{{end}}", &d).unwrap(), "abcabc");
    }

    #[test]
    fn trim_and_comments() {
        let d = data();
        assert_eq!(render("a  {{- .ID -}}  \n b", &d).unwrap(), "aabcb");
        assert_eq!(render("x{{/* hi */}}y", &d).unwrap(), "xy");
        assert_eq!(render("x {{- /* hi */ -}} y", &d).unwrap(), "xy");
    }

    #[test]
    fn functions() {
        let d = data();
        assert_eq!(render("{{join .List \",\"}}", &d).unwrap(), "a,b");
        assert_eq!(render("{{.Spec.Role | upper}}", &d).unwrap(), "MANAGER");
        assert_eq!(render("{{title \"hello world\"}}", &d).unwrap(), "Hello World");
        assert_eq!(render("{{truncate .Spec.Role 3}}", &d).unwrap(), "man");
        assert_eq!(render("{{pad .ID 1 2}}|", &d).unwrap(), " abc  |");
        assert_eq!(render("{{len .List}} {{index .List 1}} {{index .Spec.Labels \"zone\"}}", &d).unwrap(), "2 b b");
        assert_eq!(render("{{printf \"%-5s|%3d|%q\" .ID .Num .ID}}", &d).unwrap(), "abc  |  3|\"abc\"");
        assert_eq!(render("{{split \"a:b\" \":\"}}", &d).unwrap(), "[a b]");
        assert_eq!(render("{{if and .ID (not .Empty)}}ok{{end}}", &d).unwrap(), "ok");
        assert_eq!(render("{{(index .List 0) | printf \"%s!\"}}", &d).unwrap(), "a!");
        assert_eq!(render("{{if gt .Num 2}}big{{end}}", &d).unwrap(), "big");
        assert_eq!(render("{{.ID}} {{.Num}}", &d).unwrap(), "abc 3");
        assert_eq!(render("{{(index .List 0)}} {{with $s := .Spec}}{{$s.Role}}{{end}}", &d).unwrap(), "a manager");
        assert!(render("{{nosuch .ID}}", &d).is_err());
    }

    #[test]
    fn one_argument_methods() {
        let labels = json::object([("com.example.tier", Value::from("front"))]);
        let data = json::object([("Name".to_string(), Value::from("web")), (format!("{METHOD_PREFIX}Label"), labels)]);
        let t = parse(r#"{{.Name}} {{.Label "com.example.tier"}}|{{.Label "nope"}}|{{json .}}"#).unwrap();
        assert_eq!(t.execute(&data).unwrap(), r#"web front||{"Name":"web"}"#);
        let row = context(json::object([("Digest", Value::from("<none>"))]));
        assert_eq!(parse("{{json .}} {{.Digest}}").unwrap().execute(&row).unwrap(), r#"{"Digest":"\u003cnone\u003e"} <none>"#);
        let nested = json::object([("Images", Value::Array(vec![row.clone()])), ("X", Value::from("<a>"))]);
        assert_eq!(parse("{{json .}}").unwrap().execute(&nested).unwrap(), r#"{"Images":[{"Digest":"\u003cnone\u003e"}],"X":"<a>"}"#);
        let plain = json::object([("Digest", Value::from("<none>"))]);
        assert_eq!(parse("{{json .}}").unwrap().execute(&plain).unwrap(), r#"{"Digest":"<none>"}"#);
        let header = json::object([("Name", Value::from("NAME"))]);
        let t = parse(r#"{{.Name}}\t{{.Label "com.example.tier"}}\t{{.Label "a_b-c"}}"#).unwrap();
        assert_eq!(t.execute_header(&header).unwrap(), r"NAME\ttier\ta b c");
        assert!(parse("{{.Name 1}}").unwrap().execute(&data).unwrap_err().contains("can't give argument to non-function"));
    }

    #[test]
    fn numbers_print_as_they_came() {
        let d = json::parse(r#"{"Big":18446744073709551615,"Neg":-9223372036854775808,"F":2.5,"W":1.0}"#).unwrap();
        assert_eq!(
            render("{{.Big}} {{.Neg}} {{.F}} {{.W}} {{json .}}", &d).unwrap(),
            format!("{} {} 2.5 1.0 {}", u64::MAX, i64::MIN, d.to_compact())
        );
        // Go's fmt with a uint64 and an int64 (these saturated before).
        assert_eq!(
            render("{{printf \"%d %x %o\" .Big .Big .Neg}}", &d).unwrap(),
            "18446744073709551615 ffffffffffffffff -1000000000000000000000"
        );
        assert_eq!(render("{{printf \"%d|%v|%s\" .F .W .W}}", &d).unwrap(), "%!d(float64=2.5)|1.0|%!s(float64=1.0)");
        assert_eq!(render("{{printf \"%d %o\" -8 -8}} {{print 0x1F 3}}", &d).unwrap(), "-8 -10 31 3");
        assert!(render("{{print 1e400}}", &d).is_err());
        // Integer arguments: a float truncates, a uint64 past i64 saturates.
        assert_eq!(render("{{truncate \"abcdef\" 2.9}} {{truncate \"abc\" .Big}}", &d).unwrap(), "ab abc");
    }

    #[test]
    fn header_mode() {
        let header = json::object([("ID", "ID".into()), ("Self", "".into())]);
        let t = parse("{{json .ID}} {{if .Self}}*{{else}} {{end}}").unwrap();
        assert_eq!(t.execute_header(&header).unwrap(), "ID  ");
    }

    #[test]
    fn runaway_counts_are_refused_not_allocated() {
        // Each of these panicked or aborted on allocation before.
        let e = render("{{range 18446744073709551615}}{{end}}", &Value::Null).unwrap_err();
        assert!(e.contains("iterations"), "{e}");
        assert!(render("{{range 99999999999}}{{end}}", &Value::Null).is_err());
        assert_eq!(render("{{range 3}}{{.}}{{end}}", &Value::Null).unwrap(), "012");
        assert!(render("{{pad \"x\" 99999999999 0}}", &Value::Null).unwrap_err().contains("too many"));
        // Go's fmt: a width or precision past a million stops formatting.
        assert_eq!(render("{{printf \"a%99999999999db\" 1}}", &Value::Null).unwrap(), "a%!(NOVERB)%!(EXTRA int=1)");
        assert_eq!(render("{{printf \"%.99999999999f\" 1}}", &Value::Null).unwrap(), "%!(NOVERB)%!(EXTRA int=1)");
        let long = render("{{printf \"%.70000f\" 1.5}}", &Value::Null).unwrap();
        assert_eq!(long.len(), 70002);
        assert!(long.starts_with("1.5000") && long.ends_with('0'));
        assert_eq!(render("{{printf \"%5.1f|%-3d|\" 2.25 7}}", &Value::Null).unwrap(), "  2.2|7  |");
    }

    #[test]
    fn parse_errors() {
        assert!(parse("{{if .A}}x").is_err());
        assert!(parse("{{end}}").is_err());
        assert!(parse("{{.A").is_err());
        assert!(parse("{{\"abc}}").is_err());
    }
}
