//! libcgroup's cgconfig.conf syntax (cgconfig.conf(5)): `group NAME { perm
//! { task {…} admin {…} } CONTROLLER { NAME = VALUE; … } … }`, `template
//! NAME { … }` (a group made on demand, NAME holding `%u`-style variables),
//! `default { perm {…} }` (the perm of groups that have none) and `mount {
//! CONTROLLER = PATH; … }` (where libcgroup would mount hierarchies; corral
//! never mounts, the tool only checks them).
//!
//! ```text
//! # comment
//! mount { cpu = /sys/fs/cgroup/cpu; }
//! default { perm { task { uid = root; } admin { uid = root; } } }
//! group daemons/www {
//!     perm {
//!         task  { uid = root; gid = webmaster; fperm = 770; }
//!         admin { uid = root; gid = root; dperm = 775; fperm = 744; }
//!     }
//!     cpu    { cpu.shares = "1000"; }
//!     memory { memory.limit_in_bytes = 64M; }
//! }
//! template users/%u { cpu { cpu.shares = 100; } }
//! ```
//!
//! Template variables (cgrules.conf(5)): `%u` user name, `%U` uid, `%g`
//! group name, `%G` gid, `%p` process name, `%P` pid, `%%` a `%`; any other
//! `%x` stays as written.
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
    /// The `group` blocks, each with the `default` perm if it had none.
    pub groups: Vec<ConfGroup>,
    /// The `template` blocks; `name` is the pattern (`users/%u`).
    pub templates: Vec<ConfGroup>,
    /// The `default` block's perm (only `task` and `admin` are set).
    pub default: Option<ConfGroup>,
    /// The `mount` blocks' entries, controller → mount point, in file order.
    pub mounts: Vec<(String, String)>,
}

impl Conf {
    /// The template whose pattern is `pattern` exactly.
    pub fn template(&self, pattern: &str) -> Option<&ConfGroup> {
        self.templates.iter().find(|t| t.name == pattern)
    }
}

/// What template variables stand for: the process being placed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateVars {
    /// `%u`: its user's name (`%U` if unknown).
    pub user: Option<String>,
    /// `%U`.
    pub uid: u32,
    /// `%g`: its group's name (`%G` if unknown).
    pub group: Option<String>,
    /// `%G`.
    pub gid: u32,
    /// `%p`: its name (`comm`, or the program's file name).
    pub process: String,
    /// `%P`.
    pub pid: u32,
}

impl TemplateVars {
    /// The variables of process `pid`: its real uid and gid (from
    /// /proc/PID/status) with their names from /etc/passwd and /etc/group,
    /// its `comm`, its pid.
    pub fn of_pid(pid: i32) -> std::io::Result<TemplateVars> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let id = |key: &str| -> u32 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        let (uid, gid) = (id("Uid:"), id("Gid:"));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        Ok(TemplateVars {
            user: name_of("/etc/passwd", uid),
            uid,
            group: name_of("/etc/group", gid),
            gid,
            process: comm.trim().to_owned(),
            pid: u32::try_from(pid).unwrap_or(0),
        })
    }
}

/// The name of id `id` in a passwd(5)/group(5)-format file.
fn name_of(file: &str, id: u32) -> Option<String> {
    std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == id).then(|| name.to_owned())
    })
}

/// Expands the template variables of `pattern` (module doc).
pub fn expand(pattern: &str, v: &TemplateVars) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(&v.user.clone().unwrap_or_else(|| v.uid.to_string())),
            Some('U') => out.push_str(&v.uid.to_string()),
            Some('g') => out.push_str(&v.group.clone().unwrap_or_else(|| v.gid.to_string())),
            Some('G') => out.push_str(&v.gid.to_string()),
            Some('p') => out.push_str(&v.process),
            Some('P') => out.push_str(&v.pid.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
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
            Tok::Word(w) if w == "template" => conf.templates.push(p.group()?),
            Tok::Word(w) if w == "mount" => {
                p.expect(Tok::Open, "'{' after mount")?;
                conf.mounts.extend(p.assignments()?);
            }
            Tok::Word(w) if w == "default" => {
                p.expect(Tok::Open, "'{' after default")?;
                let mut d = ConfGroup::default();
                loop {
                    match p.next() {
                        Some(Tok::Close) => break,
                        Some(Tok::Word(w)) if w == "perm" => p.perm(&mut d)?,
                        _ => {
                            p.pos = p.pos.saturating_sub(1);
                            return Err(p.err("expected perm or '}' in default"));
                        }
                    }
                }
                conf.default = Some(d);
            }
            _ => {
                p.pos = p.pos.saturating_sub(1);
                return Err(p.err("expected group, mount, default or template"));
            }
        }
    }
    // libcgroup: "default" is the perm of every group without its own, in
    // the whole file, wherever the block stands.
    if let Some(d) = &conf.default {
        for g in conf.groups.iter_mut().chain(conf.templates.iter_mut()) {
            if g.task.is_empty() && g.admin.is_empty() {
                g.task = d.task.clone();
                g.admin = d.admin.clone();
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
        assert_eq!(
            c.mounts,
            [("cpu".to_owned(), "/mnt/cgroups/cpu".to_owned())]
        );
        assert_eq!(c.templates.len(), 1);
        assert_eq!(c.template("users/%u").unwrap().controllers[0].0, "cpu");
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
    fn default_perm_goes_to_groups_without_one() {
        let text = "group a { perm { task { uid = 1; } } }\n\
                    group b { cpu {} }\n\
                    default { perm { task { uid = 7; } admin { uid = 8; } } }\n\
                    template t/%U { }\n";
        let c = parse(text).unwrap();
        assert_eq!(c.groups[0].task, [("uid".to_owned(), "1".to_owned())]);
        assert!(c.groups[0].admin.is_empty(), "a's own perm is kept whole");
        assert_eq!(c.groups[1].task, [("uid".to_owned(), "7".to_owned())]);
        assert_eq!(c.groups[1].admin, [("uid".to_owned(), "8".to_owned())]);
        assert_eq!(c.templates[0].admin, [("uid".to_owned(), "8".to_owned())]);
        let e = parse("default { cpu {} }").unwrap_err();
        assert_eq!(e.to_string(), "line 1: expected perm or '}' in default");
    }

    #[test]
    fn template_variables_expand() {
        let v = TemplateVars {
            user: Some("alice".into()),
            uid: 1000,
            group: None,
            gid: 100,
            process: "sleep".into(),
            pid: 42,
        };
        assert_eq!(expand("users/%u/%p", &v), "users/alice/sleep");
        assert_eq!(expand("%U:%g:%G:%P:%%:%x:%", &v), "1000:100:100:42:%:%x:%");
    }

    #[test]
    fn our_own_variables_are_read_from_proc() {
        let me = i32::try_from(std::process::id()).unwrap();
        let v = TemplateVars::of_pid(me).unwrap();
        assert_eq!(v.pid, std::process::id());
        assert_eq!(v.uid, rustix::process::getuid().as_raw());
        assert_eq!(v.gid, rustix::process::getgid().as_raw());
        assert!(!v.process.is_empty());
        if v.uid == 0 {
            assert_eq!(v.user.as_deref(), Some("root"));
        }
        assert!(TemplateVars::of_pid(-1).is_err());
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
        fn expand_never_panics(p in "\\PC{0,32}") {
            let _ = expand(&p, &TemplateVars::default());
        }

        #[test]
        fn fuzz_entry_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            fuzz_conf(&data);
        }
    }
}
