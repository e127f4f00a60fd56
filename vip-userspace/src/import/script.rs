//! keepalived's script strings as argv.
//!
//! keepalived (2.x) splits a script keyword's line again with quotes: the first word after
//! the keyword is the command string, the next ones the user and group to run it as. It
//! then splits the command string into the program and its arguments, `"..."` and `'...'`
//! grouping and backslash escapes (`\n`, `\x41`, `\\`, ...) taken as a shell would, and
//! runs it without a shell (`lib/notify.c`). vipd runs commands the same way, so the argv
//! carries over as is.
//!
//! A command string that uses shell syntax (a pipe, `&&`, `;`, a redirection, `$(...)`)
//! only works through a shell, so it becomes `["/bin/sh", "-c", STRING]`; the caller says
//! so.

/// The words of a script keyword's line after the keyword: the command string, then user
/// and group if written. Quotes group and are removed; backslashes are kept.
pub(crate) fn line_words(raw: &str) -> Result<Vec<String>, String> {
    let words = split(raw, false)?;
    Ok(words.into_iter().skip(1).map(|w| w.text).collect())
}

/// The program and its arguments, and whether the string needs a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Argv {
    pub(crate) argv: Vec<String>,
    pub(crate) needs_shell: bool,
}

pub(crate) fn argv(command: &str) -> Result<Argv, String> {
    if command.trim_start().starts_with('<') {
        // keepalived's own special case: "</path" tests that a file can be opened, run
        // through system().
        return Ok(Argv {
            argv: vec![command.to_owned()],
            needs_shell: true,
        });
    }
    let words = split(command, true)?;
    let needs_shell = words.iter().any(|w| w.shell_syntax);
    Ok(Argv {
        argv: words.into_iter().map(|w| w.text).collect(),
        needs_shell,
    })
}

struct Split {
    text: String,
    /// Holds an unquoted character a shell would act on.
    shell_syntax: bool,
}

/// keepalived's `alloc_strvec_quoted_escaped_common()`.
fn split(src: &str, escapes: bool) -> Result<Vec<Split>, String> {
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut shell_syntax = false;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => {
                    chars.next();
                    let Some(next) = chars.next() else {
                        return Err(format!("{src:?} ends with a lone '\\'"));
                    };
                    if escapes {
                        word.push(unescape(next, &mut chars));
                    } else {
                        word.push('\\');
                        word.push(next);
                    }
                }
                (Some(q), c) if c == q => {
                    chars.next();
                    quote = None;
                }
                (None, '"' | '\'') => {
                    quote = Some(c);
                    chars.next();
                }
                (None, c) => {
                    if matches!(c, '|' | '&' | ';' | '<' | '>' | '`')
                        || (c == '$' && chars.clone().nth(1) == Some('('))
                    {
                        shell_syntax = true;
                    }
                    word.push(c);
                    chars.next();
                }
                (Some(_), c) => {
                    word.push(c);
                    chars.next();
                }
            }
        }
        if let Some(q) = quote {
            return Err(format!("{src:?}: missing terminating {q}"));
        }
        out.push(Split {
            text: word,
            shell_syntax,
        });
    }
    Ok(out)
}

fn unescape(c: char, rest: &mut std::iter::Peekable<std::str::Chars<'_>>) -> char {
    let digits = |rest: &mut std::iter::Peekable<std::str::Chars<'_>>, radix: u32, max: usize| {
        let mut value = 0u32;
        let mut n = 0;
        while n < max
            && let Some(d) = rest.peek().and_then(|d| d.to_digit(radix))
        {
            value = value * radix + d;
            rest.next();
            n += 1;
        }
        (value, n)
    };
    match c {
        'a' => '\x07',
        'b' => '\x08',
        'E' => '\x1b',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        'x' if rest.peek().is_some_and(char::is_ascii_hexdigit) => {
            char::from_u32(digits(rest, 16, 2).0).unwrap_or('x')
        }
        'c' if rest.peek().is_some() => {
            let ctl = rest.next().unwrap_or('@');
            char::from_u32(u32::from(ctl) & 0x1f).unwrap_or(ctl)
        }
        '0'..='7' => {
            let (more, n) = digits(rest, 8, 2);
            let first = c.to_digit(8).unwrap_or(0);
            char::from_u32((first * 8u32.pow(n as u32) + more) & 0xff).unwrap_or(c)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(cmd: &str) -> Vec<String> {
        argv(cmd).unwrap().argv
    }

    #[test]
    fn quotes_group_and_escapes_apply_as_keepalived_does() {
        assert_eq!(
            words(
                r#"/etc/keepalived/notify.sh ' spaces\x20f\x69le ' '"s p a c e "' SG1.low master"#
            ),
            [
                "/etc/keepalived/notify.sh",
                " spaces file ",
                "\"s p a c e \"",
                "SG1.low",
                "master"
            ]
        );
        assert_eq!(words(r"/bin/a b\ c \101\n"), ["/bin/a", "b c", "A\n"]);
        assert_eq!(words("/bin/check"), ["/bin/check"]);
    }

    #[test]
    fn line_words_keep_the_command_string_whole() {
        assert_eq!(
            line_words(r#"notify_master "/bin/n 'a b' \x41" vipd_script users"#).unwrap(),
            [r"/bin/n 'a b' \x41", "vipd_script", "users"]
        );
        assert!(line_words("notify /bin/n 'open").is_err());
    }

    #[test]
    fn shell_syntax_is_found_outside_quotes_only() {
        assert!(
            argv("/usr/bin/pgrep haproxy | grep -q x")
                .unwrap()
                .needs_shell
        );
        assert!(argv("/bin/true && /bin/false").unwrap().needs_shell);
        assert!(argv("/bin/cat x > /dev/null").unwrap().needs_shell);
        assert!(argv("/bin/echo $(date)").unwrap().needs_shell);
        assert!(argv("</dev/tcp/127.0.0.1/80").unwrap().needs_shell);
        assert!(!argv("/bin/echo '|' \"a;b\" $HOME").unwrap().needs_shell);
    }
}
