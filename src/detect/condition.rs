//! A Sigma rule's `condition`: `and`, `or`, `not`, parentheses, `1 of <prefix>*`,
//! `all of <prefix>*`, `1 of them`, `all of them`, over the names of the rule's
//! searches. Precedence, tightest first: `not`, `and`, `or`. An aggregation (`| count()
//! …`) or `near` is not supported: the rule is skipped, never applied in part.

use std::fmt;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// One search, by name.
    Search(String),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    /// `1 of x*` / `all of x*` (a pattern with `*`), `1 of them` / `all of them`
    /// (`Them`), or `1 of name` (one name).
    Of {
        all: bool,
        what: Of,
    },
}

/// What `1 of` / `all of` ranges over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Of {
    Them,
    /// Names matching a pattern whose `*` stands for any text.
    Pattern(String),
}

/// Why a condition cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionError {
    /// Valid Sigma that this engine does not run (aggregations, `near`).
    Unsupported(String),
    /// Not a condition.
    Malformed(String),
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionError::Unsupported(m) | ConditionError::Malformed(m) => f.write_str(m),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    Pipe,
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(Token::Word(std::mem::take(word)));
        }
    };
    for c in text.chars() {
        match c {
            '(' | ')' | '|' => {
                flush(&mut word, &mut out);
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Pipe,
                });
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Parses `text`.
pub fn parse(text: &str) -> Result<Condition, ConditionError> {
    let toks = tokens(text);
    if toks.contains(&Token::Pipe) {
        return Err(ConditionError::Unsupported(format!(
            "aggregation in condition `{text}`"
        )));
    }
    if toks
        .iter()
        .any(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("near")))
    {
        return Err(ConditionError::Unsupported(format!(
            "`near` in condition `{text}`"
        )));
    }
    let mut p = Parser { toks, at: 0 };
    let c = p.or()?;
    match p.toks.get(p.at) {
        None => Ok(c),
        Some(t) => Err(ConditionError::Malformed(format!(
            "unexpected {} in condition `{text}`",
            show(t)
        ))),
    }
}

fn show(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("`{w}`"),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::Pipe => "`|`".into(),
    }
}

struct Parser {
    toks: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.at) {
            Some(Token::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        self.joined("or", Self::and, Condition::Or)
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        self.joined("and", Self::not, Condition::And)
    }

    /// `operand (word operand)*`, one operand alone as itself.
    fn joined(
        &mut self,
        word: &str,
        operand: fn(&mut Self) -> Result<Condition, ConditionError>,
        all: fn(Vec<Condition>) -> Condition,
    ) -> Result<Condition, ConditionError> {
        let mut parts = vec![operand(self)?];
        while self.peek_word().as_deref() == Some(word) {
            self.at += 1;
            parts.push(operand(self)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            all(parts)
        })
    }

    fn not(&mut self) -> Result<Condition, ConditionError> {
        if self.peek_word().as_deref() == Some("not") {
            self.at += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Condition, ConditionError> {
        let end = || ConditionError::Malformed("the condition ends too early".into());
        match self.toks.get(self.at).cloned() {
            None => Err(end()),
            Some(Token::Open) => {
                self.at += 1;
                let c = self.or()?;
                if self.toks.get(self.at) != Some(&Token::Close) {
                    return Err(ConditionError::Malformed(
                        "a `(` is not closed in the condition".into(),
                    ));
                }
                self.at += 1;
                Ok(c)
            }
            Some(t @ (Token::Close | Token::Pipe)) => Err(ConditionError::Malformed(format!(
                "unexpected {} in the condition",
                show(&t)
            ))),
            Some(Token::Word(w)) => {
                self.at += 1;
                let lower = w.to_ascii_lowercase();
                if ["and", "or", "of", "them"].contains(&lower.as_str()) {
                    return Err(ConditionError::Malformed(format!(
                        "unexpected `{w}` in the condition"
                    )));
                }
                let quantifier = match lower.as_str() {
                    "all" => Some(true),
                    "1" | "any" => Some(false),
                    _ => None,
                };
                match (quantifier, self.peek_word().as_deref()) {
                    (Some(all), Some("of")) => {
                        self.at += 1;
                        let Some(Token::Word(target)) = self.toks.get(self.at).cloned() else {
                            return Err(ConditionError::Malformed(format!(
                                "`{w} of` needs `them` or a name in the condition"
                            )));
                        };
                        self.at += 1;
                        let what = if target.eq_ignore_ascii_case("them") {
                            Of::Them
                        } else {
                            Of::Pattern(target)
                        };
                        Ok(Condition::Of { all, what })
                    }
                    _ if lower.chars().all(|c| c.is_ascii_digit()) && lower != "1" => {
                        Err(ConditionError::Unsupported(format!(
                            "`{w} of` in condition (only `1 of` and `all of`)"
                        )))
                    }
                    _ => Ok(Condition::Search(w)),
                }
            }
        }
    }
}

impl Of {
    /// Whether the search `name` is in the range (`them`: every search not starting
    /// with `_`, as Sigma says).
    pub fn covers(&self, name: &str) -> bool {
        match self {
            Of::Them => !name.starts_with('_'),
            Of::Pattern(p) => glob(p, name),
        }
    }
}

/// `pattern` (with `*` for any text) against `name`, exactly.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    if !name.ends_with(last) {
        return false;
    }
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Condition {
    /// The names of searches this condition refers to by name (not by pattern).
    pub fn names(&self) -> Vec<&str> {
        match self {
            Condition::Search(n) => vec![n.as_str()],
            Condition::Not(c) => c.names(),
            Condition::And(cs) | Condition::Or(cs) => cs.iter().flat_map(|c| c.names()).collect(),
            Condition::Of { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Condition {
        Condition::Search(n.into())
    }

    #[test]
    fn not_binds_tighter_than_and_tighter_than_or() {
        assert_eq!(
            parse("a or b and not c").expect("parse"),
            Condition::Or(vec![
                s("a"),
                Condition::And(vec![s("b"), Condition::Not(Box::new(s("c")))])
            ])
        );
        assert_eq!(
            parse("(a or b) and not (c or d)").expect("parse"),
            Condition::And(vec![
                Condition::Or(vec![s("a"), s("b")]),
                Condition::Not(Box::new(Condition::Or(vec![s("c"), s("d")])))
            ])
        );
    }

    #[test]
    fn quantifiers_over_patterns_and_them() {
        assert_eq!(
            parse("1 of selection_* and not all of filter*").expect("parse"),
            Condition::And(vec![
                Condition::Of {
                    all: false,
                    what: Of::Pattern("selection_*".into())
                },
                Condition::Not(Box::new(Condition::Of {
                    all: true,
                    what: Of::Pattern("filter*".into())
                }))
            ])
        );
        assert_eq!(
            parse("all of them").expect("parse"),
            Condition::Of {
                all: true,
                what: Of::Them
            }
        );
        let p = Of::Pattern("sel_*_x".into());
        assert!(p.covers("sel_a_x") && p.covers("sel__x") && !p.covers("sel_a_y"));
        assert!(Of::Them.covers("selection") && !Of::Them.covers("_helper"));
    }

    #[test]
    fn aggregations_and_near_are_unsupported_not_malformed() {
        assert!(matches!(
            parse("selection | count() by userIdentity.arn > 10"),
            Err(ConditionError::Unsupported(_))
        ));
        assert!(matches!(
            parse("a near b"),
            Err(ConditionError::Unsupported(_))
        ));
        assert!(matches!(
            parse("2 of selection*"),
            Err(ConditionError::Unsupported(_))
        ));
    }

    #[test]
    fn broken_conditions_say_what_is_wrong() {
        for bad in ["", "a and", "(a or b", "a b", "a or ) b", "not"] {
            assert!(
                matches!(parse(bad), Err(ConditionError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
