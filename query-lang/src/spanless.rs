//! Clearing spans, so trees can be compared by structure alone (`parse(print(t)) == t`).

use crate::ast::*;

impl Statement {
    /// The same statement with every span zeroed.
    pub fn without_spans(&self) -> Statement {
        let mut s = self.clone();
        s.clear_spans();
        s
    }

    fn clear_spans(&mut self) {
        self.span = Span::default();
        if let Some(l) = &mut self.as_of {
            l.span = Span::default();
        }
        if let Some(l) = &mut self.overlap {
            l.span = Span::default();
        }
        match &mut self.kind {
            StatementKind::Count(e) | StatementKind::Explain(e) => e.clear_spans(),
            StatementKind::ExplainSql(inner) => {
                let mut statement = Statement {
                    kind: (**inner).clone(),
                    as_of: None,
                    overlap: None,
                    span: Span::default(),
                };
                statement.clear_spans();
                **inner = statement.kind;
            }
            StatementKind::Find { segment, show, .. } => {
                segment.clear_spans();
                show.iter_mut().for_each(|n| n.span = Span::default());
            }
            StatementKind::Export {
                segment,
                show,
                path,
                ..
            } => {
                segment.clear_spans();
                show.iter_mut().for_each(|n| n.span = Span::default());
                path.span = Span::default();
            }
            StatementKind::Breakdown { segment, by, .. } => {
                segment.clear_spans();
                for column in by {
                    match column {
                        ByColumn::Name { name, of } => {
                            name.span = Span::default();
                            if let Some(event) = of {
                                event.span = Span::default();
                            }
                        }
                        ByColumn::Value(v) => v.clear_spans(),
                    }
                }
            }
            StatementKind::ExplainMember { member, group } => {
                member.span = Span::default();
                group.span = Span::default();
            }
            StatementKind::ShowEvent(name)
            | StatementKind::ShowAttribute(name)
            | StatementKind::ShowGroup(name) => name.span = Span::default(),
            StatementKind::DefineGroup { name, segment, .. } => {
                name.span = Span::default();
                segment.clear_spans();
            }
            StatementKind::DefineTrait { name, body } => {
                name.span = Span::default();
                body.clear_spans();
            }
            StatementKind::DropGroup(name)
            | StatementKind::DropTrait(name)
            | StatementKind::DropAttribute(name) => name.span = Span::default(),
            StatementKind::AlterAttribute { name, type_name } => {
                name.span = Span::default();
                type_name.span = Span::default();
            }
            StatementKind::Show(_) => {}
            StatementKind::DefineIdentifier { name, block, .. } => {
                name.span = Span::default();
                for b in block {
                    b.span = Span::default();
                }
            }
            StatementKind::DefineMerge { attribute, .. } => attribute.span = Span::default(),
            StatementKind::Funnel(funnel) => funnel.clear_spans(),
            StatementKind::FindFunnel {
                funnel, step, show, ..
            } => {
                funnel.clear_spans();
                step.1 = Span::default();
                show.iter_mut().for_each(|n| n.span = Span::default());
            }
        }
    }
}

impl FunnelExpr {
    fn clear_spans(&mut self) {
        self.span = Span::default();
        self.within.2 = Span::default();
        for step in &mut self.steps {
            step.span = Span::default();
            step.event.span = Span::default();
            if let Some(f) = &mut step.filter {
                f.clear_spans();
            }
        }
        if let Some(w) = &mut self.range {
            w.clear_spans();
        }
        if let Some(s) = &mut self.segment {
            s.clear_spans();
        }
        match &mut self.by {
            Some(FunnelBy::Value(v)) => v.clear_spans(),
            Some(FunnelBy::Touch { prop, span, .. }) => {
                prop.span = Span::default();
                *span = Span::default();
            }
            None => {}
        }
    }
}

impl TraitBody {
    fn clear_spans(&mut self) {
        match self {
            TraitBody::Value(v) => v.clear_spans(),
            TraitBody::Quantile {
                value, over, span, ..
            } => {
                *span = Span::default();
                value.clear_spans();
                over.clear_spans();
            }
            TraitBody::Case {
                whens,
                otherwise,
                span,
            } => {
                *span = Span::default();
                for (when, then) in whens {
                    when.clear_spans();
                    then.span = Span::default();
                }
                if let Some(e) = otherwise {
                    e.span = Span::default();
                }
            }
        }
    }
}

impl Expr {
    pub(crate) fn clear_spans(&mut self) {
        match self {
            Expr::All(s) | Expr::Tag(_, s) => *s = Span::default(),
            Expr::InGroup(n, s) => {
                n.span = Span::default();
                *s = Span::default();
            }
            Expr::Cmp(c) => c.clear_spans(),
            Expr::Identifiers { id_type, span, .. } => {
                id_type.span = Span::default();
                *span = Span::default();
            }
            Expr::Value(v) => {
                v.span = Span::default();
                v.value.clear_spans();
                v.test.clear_spans();
            }
            Expr::Did(d, s) => {
                *s = Span::default();
                d.event.span = Span::default();
                if let Some(f) = &mut d.filter {
                    f.clear_spans();
                }
                if let Some((_, _, s)) = &mut d.count {
                    *s = Span::default();
                }
                if let Some(w) = &mut d.window {
                    w.clear_spans();
                }
                if let Some(t) = &mut d.then {
                    t.span = Span::default();
                    t.event.span = Span::default();
                    if let Some(f) = &mut t.filter {
                        f.clear_spans();
                    }
                    if let Some((_, _, s)) = &mut t.within {
                        *s = Span::default();
                    }
                    if let Some(m) = &mut t.matching {
                        m.span = Span::default();
                    }
                }
            }
            Expr::And(parts, s) | Expr::Or(parts, s) => {
                *s = Span::default();
                parts.iter_mut().for_each(Expr::clear_spans);
            }
            Expr::Not(inner, s) => {
                *s = Span::default();
                inner.clear_spans();
            }
        }
    }
}

impl Comparison {
    fn clear_spans(&mut self) {
        self.span = Span::default();
        self.name.span = Span::default();
        self.test.clear_spans();
    }
}

impl Test {
    fn clear_spans(&mut self) {
        match self {
            Test::Cmp(_, l) => l.span = Span::default(),
            Test::In(ls) => ls.iter_mut().for_each(|l| l.span = Span::default()),
            Test::Between(a, b) => {
                a.span = Span::default();
                b.span = Span::default();
            }
            Test::Null { .. } => {}
        }
    }
}

impl WindowExpr {
    fn clear_spans(&mut self) {
        match self {
            WindowExpr::Last { span, .. } => *span = Span::default(),
            WindowExpr::Range {
                since,
                before,
                span,
            } => {
                *span = Span::default();
                for l in since.iter_mut().chain(before.iter_mut()) {
                    l.span = Span::default();
                }
            }
        }
    }
}

impl ValueExpr {
    fn clear_spans(&mut self) {
        match self {
            ValueExpr::Name(n) => n.span = Span::default(),
            ValueExpr::Aggregate(a) => {
                a.span = Span::default();
                a.event.span = Span::default();
                if let Some(p) = &mut a.prop {
                    p.span = Span::default();
                }
                if let Some(f) = &mut a.filter {
                    f.clear_spans();
                }
                match &mut a.window {
                    Some(AggWindow::Window(w)) => w.clear_spans(),
                    Some(AggWindow::WithinAny { span, .. }) => *span = Span::default(),
                    None => {}
                }
            }
            ValueExpr::DaysSince(inner, s) => {
                *s = Span::default();
                inner.clear_spans();
            }
            ValueExpr::Bucket { value, cuts, span } => {
                *span = Span::default();
                value.clear_spans();
                cuts.iter_mut().for_each(|c| c.span = Span::default());
            }
        }
    }
}

impl PropExpr {
    fn clear_spans(&mut self) {
        match self {
            PropExpr::Cmp(c) => c.clear_spans(),
            PropExpr::And(parts, s) | PropExpr::Or(parts, s) => {
                *s = Span::default();
                parts.iter_mut().for_each(PropExpr::clear_spans);
            }
            PropExpr::Not(inner, s) => {
                *s = Span::default();
                inner.clear_spans();
            }
        }
    }
}
