//! libcgroup's cgconfig.conf syntax (cgconfig.conf(5)), the part that
//! describes groups: `group NAME { perm { task {…} admin {…} } CONTROLLER
//! { NAME = VALUE; … } … }`. `mount`, `default` and `template` blocks are
//! parsed and skipped (the caller may warn): hierarchies are mounted by the
//! system, not by us.
//!
//! ```text
//! # comment
//! group daemons/www {
//!     perm {
//!         task  { uid = root; gid = webmaster; fperm = 770; }
//!         admin { uid = root; gid = root; dperm = 775; fperm = 744; }
//!     }
//!     cpu    { cpu.shares = "1000"; }
//!     memory { memory.limit_in_bytes = 64M; }
//! }
//! ```
//!
//! Pure and panic-free on any input; errors name the line.

/// One `group` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfGroup {
    /// The group's path below each hierarchy root.
    pub name: String,
    /// `perm { task { … } }`: uid, gid, fperm.
    pub task: Vec<(String, String)>,
    /// `perm { admin { … } }`: uid, gid, dperm, fperm.
    pub admin: Vec<(String, String)>,
    /// Each controller block with its settings, in file order.
    pub controllers: Vec<(String, Vec<(String, String)>)>,
}

/// A parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conf {
    /// The `group` blocks.
    pub groups: Vec<ConfGroup>,
    /// Names of the top-level blocks that were skipped (`mount`, `default`, `template`).
    pub skipped: Vec<String>,
}

/// The file is not valid cgconfig.conf.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ConfError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Eq,
    Semi,
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, ConfError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '{' => out.push((Tok::Open, line)),
            '}' => out.push((Tok::Close, line)),
            '=' => out.push((Tok::Eq, line)),
            ';' => out.push((Tok::Semi, line)),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(ConfError {
                                line: start,
                                message: "unterminated quoted string".to_owned(),
                            })
                        }
                        Some('"') => break,
                        Some('\\') => {
                            if let Some(n) = chars.next() {
                                s.push(n);
                            }
                        }
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c);
                        }
                    }
                }
                out.push((Tok::Word(s), start));
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | '=' | ';' | '#' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push((Tok::Word(s), line));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map_or(1, |t| t.1)
    }

    fn err(&self, message: impl Into<String>) -> ConfError {
        ConfError {
            line: self.line(),
            message: message.into(),
        }
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), ConfError> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                Err(self.err(format!("expected {what}")))
            }
        }
    }

    fn word(&mut self, what: &str) -> Result<String, ConfError> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                Err(self.err(format!("expected {what}")))
            }
        }
    }

    /// `{ key = value; … }` (the opening brace already read).
    fn assignments(&mut self) -> Result<Vec<(String, String)>, ConfError> {
        let mut out = Vec::new();
        loop {
            if self.peek() == Some(&Tok::Close) {
                self.pos += 1;
                return Ok(out);
            }
            let k = self.word("a setting name or '}'")?;
            self.expect(Tok::Eq, "'=' after the setting name")?;
            let v = self.word("a value")?;
            self.expect(Tok::Semi, "';' after the value")?;
            out.push((k, v));
        }
    }

    /// Skips a balanced `{ … }` (the opening brace already read).
    fn skip_block(&mut self) -> Result<(), ConfError> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.next() {
                Some(Tok::Open) => depth += 1,
                Some(Tok::Close) => depth -= 1,
                Some(_) => {}
                None => return Err(self.err("unbalanced '{'")),
            }
        }
        Ok(())
    }

    fn perm(&mut self, g: &mut ConfGroup) -> Result<(), ConfError> {
        self.expect(Tok::Open, "'{' after perm")?;
        loop {
            match self.next() {
                Some(Tok::Close) => return Ok(()),
                Some(Tok::Word(w)) if w == "task" || w == "admin" => {
                    self.expect(Tok::Open, "'{'")?;
                    let a = self.assignments()?;
                    if w == "task" {
                        g.task = a;
                    } else {
                        g.admin = a;
                    }
                }
                _ => {
                    self.pos = self.pos.saturating_sub(1);
                    return Err(self.err("expected task, admin or '}' in perm"));
                }
            }
        }
    }

    fn group(&mut self) -> Result<ConfGroup, ConfError> {
        let mut g = ConfGroup {
            name: self.word("a group name")?,
            ..ConfGroup::default()
        };
        self.expect(Tok::Open, "'{' after the group name")?;
        loop {
            match self.next() {
                Some(Tok::Close) => return Ok(g),
                Some(Tok::Word(w)) if w == "perm" => self.perm(&mut g)?,
                Some(Tok::Word(ctrl)) => {
                    self.expect(Tok::Open, "'{' after the controller name")?;
                    let a = self.assignments()?;
                    g.controllers.push((ctrl, a));
                }
                _ => {
                    self.pos = self.pos.saturating_sub(1);
                    return Err(self.err("expected perm, a controller or '}'"));
                }
            }
        }
    }
}

/// Parses cgconfig.conf text.
pub fn parse(text: &str) -> Result<Conf, ConfError> {
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
    };
    let mut conf = Conf::default();
    while let Some(t) = p.next() {
        match t {
            Tok::Word(w) if w == "group" => conf.groups.push(p.group()?),
            Tok::Word(w) if w == "mount" || w == "default" || w == "template" => {
                if w == "template" {
                    p.word("a template name")?;
                }
                p.expect(Tok::Open, "'{'")?;
                p.skip_block()?;
                conf.skipped.push(w);
            }
            _ => {
                p.pos = p.pos.saturating_sub(1);
                return Err(p.err("expected group, mount, default or template"));
            }
        }
    }
    Ok(conf)
}

/// Fuzz entry: any bytes must parse or fail without a panic.
pub fn fuzz_conf(data: &[u8]) {
    let _ = parse(&String::from_utf8_lossy(data));
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAN: &str = r#"
# from cgconfig.conf(5)
mount { cpu = /mnt/cgroups/cpu; }
group daemons/www {
    perm {
        task { uid = root; gid = webmaster; fperm = 770; }
        admin { uid = root; gid = root; dperm = 775; fperm = 744; }
    }
    cpu { cpu.shares = "1000"; }
    memory {}
}
template users/%u { cpu { cpu.shares = 10; } }
"#;

    #[test]
    fn the_man_page_example() {
        let c = parse(MAN).unwrap();
        assert_eq!(c.skipped, ["mount", "template"]);
        let g = &c.groups[0];
        assert_eq!(g.name, "daemons/www");
        assert_eq!(g.task[1], ("gid".to_owned(), "webmaster".to_owned()));
        assert_eq!(g.admin.len(), 4);
        assert_eq!(
            g.controllers,
            [
                (
                    "cpu".to_owned(),
                    vec![("cpu.shares".to_owned(), "1000".to_owned())]
                ),
                ("memory".to_owned(), vec![])
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("group x {\n  cpu { cpu.shares 10; }\n}\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: expected '=' after the setting name");
        let e = parse("group x {\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1:"), "{e}");
        let e = parse("bogus {}").unwrap_err();
        assert!(e.to_string().contains("expected group"), "{e}");
        assert!(parse("group x { cpu { a = \"b").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[a-z{}=;# \"\n.]{0,64}") {
            let _ = parse(&text);
        }

        #[test]
        fn fuzz_entry_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            fuzz_conf(&data);
        }
    }
}
