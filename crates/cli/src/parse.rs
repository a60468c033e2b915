//! Command-line parsing that builds only the clap commands a command line
//! names.
//!
//! clap's derive builds the whole tree of commands (every subcommand of
//! corral and of `corral cgroup`, with every argument) before it looks at
//! the first word, which costs more than many commands' own work: about a
//! tenth of `corral cgroup set` or `corral state`. [`parse`] finds the
//! command words first ([`crate::early_command`]), builds the root's global
//! flags and that one subcommand, and parses with it. The result is the same
//! [`Cli`] (the derive's `FromArgMatches` goes by names). Help, version, an
//! unknown word or any error go through the full parser, so messages and
//! usage lines are clap's own.

use std::ffi::OsString;

use clap::{Args as _, FromArgMatches as _, Parser as _};

use crate::{cgroup_cmd, commands, early_command, live_cmd, Cli, Global};

/// Parses `args` (the program name first) into a [`Cli`].
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let args = go_style_flags(args);
    match fast(&args) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(args),
    }
}

/// The parse with a reduced command tree, or `None` to use the full one.
fn fast(args: &[OsString]) -> Option<Cli> {
    let asks_help = args.iter().skip(1).any(|a| {
        matches!(
            a.to_str(),
            Some("-h" | "--help" | "-V" | "--version" | "help") | None
        )
    });
    if asks_help {
        return None;
    }
    let word = early_command(args.iter().cloned())?;
    let next = args
        .iter()
        .skip_while(|a| a.to_str() != Some(word.as_str()))
        .nth(1)
        .and_then(|a| a.to_str());
    let sub = one_command(&word, next)?;
    let root = Global::augment_args(clap::Command::new("corral"))
        .subcommand(sub)
        .subcommand_required(true);
    let matches = root.try_get_matches_from(args).ok()?;
    Cli::from_arg_matches(&matches).ok()
}

/// Rewrites Go-style long flags (`-no-subreaper`, `-root=/r`), which runc
/// takes as its CLI library takes any flag with one dash or two, into
/// clap's `--no-subreaper`: containerd's runc shim passes `restore
/// -no-subreaper`. Only names that are long flags of corral's global flags
/// or of the command are rewritten, and only before the command's first
/// operand (the container id; what follows it, such as `exec`'s command
/// line, is never touched); `corral cgroup`'s getopt-style tools are left
/// alone (`-rname` is `-r name` there).
fn go_style_flags(args: Vec<OsString>) -> Vec<OsString> {
    let single_dash_word = |a: &OsString| {
        a.to_str()
            .is_some_and(|a| a.len() > 2 && a.starts_with('-') && !a.starts_with("--"))
    };
    if !args.iter().skip(1).any(single_dash_word) {
        return args;
    }
    let Some(word) = early_command(args.iter().cloned()) else {
        return args;
    };
    if word == "cgroup" {
        return args;
    }
    let global = Global::augment_args(clap::Command::new("corral"));
    let sub = match one_command(&word, None) {
        Some(sub) => sub,
        None => match <Cli as clap::CommandFactory>::command().find_subcommand(&word) {
            Some(sub) => sub.clone(),
            None => return args,
        },
    };
    let mut out = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    out.extend(args.next());
    let mut in_command = false;
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            break;
        }
        let cmd = if in_command { &sub } else { &global };
        if !text.starts_with('-') || text == "-" {
            out.push(arg);
            if in_command {
                break; // the first operand
            }
            in_command = true; // the command word
            continue;
        }
        let long = text.trim_start_matches('-');
        let (name, value) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let found = if text.starts_with("--") || text.len() == 2 {
            let short = text.chars().nth(1).filter(|_| text.len() == 2);
            cmd.get_arguments().find(|a| match short {
                Some(c) => a.get_short() == Some(c),
                None => a.get_long() == Some(name),
            })
        } else {
            cmd.get_arguments().find(|a| a.get_long() == Some(name))
        };
        // The flag's value follows as the next word unless given with `=`.
        let value_follows = found.is_some_and(|a| a.get_action().takes_values()) && value.is_none();
        let go_style = found.is_some() && !text.starts_with("--") && text.len() > 2;
        out.push(if go_style {
            OsString::from(format!("-{text}"))
        } else {
            arg
        });
        if value_follows {
            out.extend(args.next());
        }
    }
    out.extend(args);
    out
}

/// The subcommands [`one_command`] builds alone.
const NAMES: [&str; 14] = [
    "create", "start", "state", "pause", "resume", "run", "kill", "delete", "list", "exec", "ps",
    "update", "events", "cgroup",
];

/// The clap command of the subcommand `name` alone (`next`: the word after
/// it, for `cgroup`'s own subcommands); `None` for names not listed here,
/// which the full parser handles.
fn one_command(name: &str, next: Option<&str>) -> Option<clap::Command> {
    let name: &'static str = NAMES.into_iter().find(|n| *n == name)?;
    let c = clap::Command::new(name);
    Some(match name {
        "create" => commands::CreateArgs::augment_args(c),
        "start" | "state" | "pause" | "resume" => commands::IdArgs::augment_args(c),
        "run" => commands::RunArgs::augment_args(c),
        "kill" => commands::KillArgs::augment_args(c),
        "delete" => commands::DeleteArgs::augment_args(c),
        "list" => commands::ListArgs::augment_args(c),
        "exec" => live_cmd::ExecArgs::augment_args(c),
        "ps" => live_cmd::PsArgs::augment_args(c),
        "update" => live_cmd::UpdateArgs::augment_args(c),
        "events" => live_cmd::EventsArgs::augment_args(c),
        "cgroup" => c
            .subcommand(cgroup_cmd::one_subcommand(next?)?)
            .subcommand_required(true),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    /// The reduced parse of `line` gives what the full parser gives.
    fn same(line: &str) {
        let fast = fast(&os(line)).unwrap_or_else(|| panic!("no fast parse of {line:?}"));
        let full = Cli::try_parse_from(os(line)).expect("full parse");
        assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line}");
    }

    #[test]
    fn the_reduced_parse_equals_the_full_one() {
        for line in [
            "corral create --bundle /b --pid-file /p c1",
            "corral --root /r --log /l --log-format json create -b /b --console-socket /s c1",
            "corral start c1",
            "corral state c1 --root /r",
            "corral pause c1",
            "corral resume c1",
            "corral run --detach --bundle /b c1",
            "corral kill --all c1 KILL",
            "corral delete --force c1",
            "corral list --format json",
            "corral --debug exec --tty --env A=1 c1 sh -c true",
            "corral exec c1 ls -l /",
            "corral ps --format json c1",
            "corral update --memory 1000000 c1",
            "corral events --stats c1",
            "corral cgroup create -g memory,pids:/x",
            "corral cgroup set -r pids.max=10 -r memory.limit_in_bytes=64M x",
            "corral cgroup classify -g pids:/x 1",
            "corral cgroup stat --json pids:/x",
            "corral cgroup delete -r -g memory,pids:/x",
            "corral cgroup get -r pids.max -n -v x",
            "corral cgroup exec -g pids:/x -- cat /proc/self/cgroup",
            "corral cgroup list",
            "corral cgroup subsys -a",
            "corral cgroup tree pids",
            "corral cgroup apply -l /etc/cgconfig.conf",
        ] {
            same(line);
        }
    }

    #[test]
    fn go_style_long_flags_are_taken_as_runc_takes_them() {
        let go = |line: &str| go_style_flags(os(line));
        // containerd's runc shim, verbatim but for the paths.
        assert_eq!(
            go(
                "corral --root /r --log /l --log-format json restore --image-path /i \
                --work-path /w --detach --pid-file /p -no-subreaper --bundle /b cnt"
            ),
            os(
                "corral --root /r --log /l --log-format json restore --image-path /i \
                --work-path /w --detach --pid-file /p --no-subreaper --bundle /b cnt"
            )
        );
        assert_eq!(
            go("corral -root /r -log-format=json delete -force c1"),
            os("corral --root /r --log-format=json delete --force c1")
        );
        // Values, clusters of short flags, unknown words and everything
        // after the container id stay as they are.
        for line in [
            "corral exec -t c1 ls -la -root",
            "corral create --bundle -bundle c1",
            "corral create -b -no c1",
            "corral kill -all c1 -9",
            "corral cgroup get -rpids.max x",
            "corral run -frobnicate c1",
        ] {
            let want = match line {
                "corral kill -all c1 -9" => os("corral kill --all c1 -9"),
                _ => os(line),
            };
            assert_eq!(go(line), want, "{line}");
        }
        let cli = parse(os(
            "corral restore -no-subreaper -bundle /b -image-path /i c1",
        ));
        assert!(cli.is_ok(), "{cli:?}");
    }

    #[test]
    fn help_version_and_unknown_words_take_the_full_parser() {
        for line in [
            "corral --help",
            "corral state --help",
            "corral -V",
            "corral cgroup help",
            "corral frobnicate c1",
            "corral cgroup frobnicate",
            "corral spec",
        ] {
            assert!(fast(&os(line)).is_none(), "{line}");
        }
        // A mistake in a listed command: the full parser reports it.
        assert!(fast(&os("corral kill")).is_none());
        assert!(parse(os("corral kill")).is_err());
    }

    #[test]
    fn every_listed_name_is_a_subcommand_of_the_full_tree() {
        let full = <Cli as clap::CommandFactory>::command();
        for name in NAMES {
            assert!(full.find_subcommand(name).is_some(), "{name}");
            if name != "cgroup" {
                assert!(one_command(name, None).is_some(), "{name}");
            }
        }
        let cgroup = full.find_subcommand("cgroup").expect("cgroup");
        for sub in cgroup.get_subcommands() {
            let name = sub.get_name();
            assert!(
                cgroup_cmd::one_subcommand(name).is_some(),
                "cgroup {name} has no entry in cgroup_cmd::one_subcommand"
            );
        }
    }
}
