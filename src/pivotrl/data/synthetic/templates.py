"""The synthetic set's templates: one function per problem kind writes the question and the worked solution in
every language from one drawn set of numbers."""

from __future__ import annotations

from pivotrl.data.synthetic.grammar import (
    _BAG,
    _BOX,
    _DAY,
    _DOLLAR,
    _PAGE,
    _PASSENGER,
    _ROLL,
    _SW_OBJECT,
    _TRAY,
    _WEEK,
    Texts,
    _cap,
    _Ctx,
    _de,
    _de_fr_of,
    _en,
    _es,
    _fr,
    _Noun,
    _pron,
    _ru,
    _sw,
    _sw_ngapi,
    _zh,
    ru_plural,
)

# ---------------------------------------------------------------------------------------- templates
# Each render function writes one problem in every language. Solutions show the arithmetic and stop
# before the answer sentence, which generate_synthetic appends from the language registry.


def _render_buy_more(c: _Ctx) -> Texts:
    a, b = c.a, c.b
    r = a + b
    o, p = c.obj, c.person
    pr = _pron(p)
    N = p.name
    es_many = "Cuántas" if o.es[2] == "f" else "Cuántos"
    zw, zm = o.zh
    jw, jc = o.ja
    return {
        "en": (f"{N('en')} has {_en(a, o)} and buys {b} more. How many {o.en[1]} does {N('en')} have now?",
               f"{N('en')} starts with {_en(a, o)} and buys {b} more. {a} + {b} = {r}, "
               f"so {N('en')} now has {_en(r, o)}."),
        "de": (f"{N('de')} hat {_de(a, o)} und kauft noch {b} dazu. Wie viele {o.de[1]} hat {N('de')} jetzt?",
               f"{N('de')} hat am Anfang {_de(a, o)} und kauft noch {b} dazu. {a} + {b} = {r}, "
               f"also hat {N('de')} jetzt {_de(r, o)}."),
        "es": (f"{N('es')} tiene {_es(a, o)} y compra {b} más. ¿{es_many} {o.es[1]} tiene {N('es')} ahora?",
               f"Al principio, {N('es')} tiene {_es(a, o)} y luego compra {b} más. {a} + {b} = {r}, "
               f"así que ahora {N('es')} tiene {_es(r, o)}."),
        # "en achète 10 de plus": "en" stands for the objects; complex inversion "Tom a-t-il".
        "fr": (f"{N('fr')} a {_fr(a, o)} et en achète {b} de plus. "
               f"Combien {_de_fr_of(o.fr[1])} {N('fr')} a-t-{pr['fr']} maintenant ?",
               f"Au début, {N('fr')} a {_fr(a, o)}, puis {pr['fr']} en achète {b} de plus. {a} + {b} = {r}, "
               f"donc {N('fr')} a maintenant {_fr(r, o)}."),
        # Present tense and verbless "у Тома 13 апельсинов" avoid gender agreement of past-tense verbs.
        "ru": (f"У {p.ru[1]} есть {_ru(a, o)}, и {pr['ru']} покупает ещё {b}. "
               f"Сколько {o.ru[3]} теперь у {p.ru[1]}?",
               f"Сначала у {p.ru[1]} {_ru(a, o)}, потом {pr['ru']} покупает ещё {b}. {a} + {b} = {r}, "
               f"значит, теперь у {p.ru[1]} {_ru(r, o)}."),
        "zh": (f"{N('zh')}有{a}{zm}{zw}，又买了{b}{zm}。{N('zh')}现在有多少{zm}{zw}？",
               f"{N('zh')}原来有{a}{zm}{zw}，又买了{b}{zm}。{a} + {b} = {r}，所以{N('zh')}现在有{r}{zm}{zw}。"),
        "ja": (f"{N('ja')}は{jw}を{a}{jc}持っています。さらに{b}{jc}買いました。"
               f"{N('ja')}は今、{jw}を何{jc}持っていますか？",
               f"{N('ja')}は最初に{jw}を{a}{jc}持っていて、さらに{b}{jc}買いました。{a} + {b} = {r}なので、"
               f"{N('ja')}は今、{jw}を{r}{jc}持っています。"),
        "sw": (f"{N('sw')} ana {_sw(a, o)}. Ananunua {_sw(b, o)} zaidi. Sasa {N('sw')} ana {_sw_ngapi(o)}?",
               f"{N('sw')} alikuwa na {_sw(a, o)}, kisha akanunua {_sw(b, o)} zaidi. {a} + {b} = {r}, "
               f"kwa hiyo sasa {N('sw')} ana {_sw(r, o)}."),
    }


def _render_give_away(c: _Ctx) -> Texts:
    a, b = c.a, c.b
    r = a - b
    o, p, f = c.obj, c.person, c.friend
    pr = _pron(p)
    N, F = p.name, f.name
    es_many = "Cuántas" if o.es[2] == "f" else "Cuántos"
    zw, zm = o.zh
    jw, jc = o.ja
    return {
        "en": (f"{N('en')} has {_en(a, o)} and gives {b} of them to {F('en')}. "
               f"How many {o.en[1]} does {N('en')} have left?",
               f"{N('en')} has {_en(a, o)} and gives {b} of them to {F('en')}. {a} - {b} = {r}, "
               f"so {N('en')} has {_en(r, o)} left."),
        "de": (f"{N('de')} hat {_de(a, o)} und schenkt {F('de')} {b} davon. "
               f"Wie viele {o.de[1]} hat {N('de')} noch?",
               f"{N('de')} hat {_de(a, o)} und verschenkt {b} davon an {F('de')}. {a} - {b} = {r}, "
               f"also hat {N('de')} noch {_de(r, o)}."),
        # Clitic doubling "le regala 5 a Anna" is the natural Spanish frame.
        "es": (f"{N('es')} tiene {_es(a, o)} y le regala {b} a {F('es')}. "
               f"¿{es_many} {o.es[1]} le quedan a {N('es')}?",
               f"{N('es')} tiene {_es(a, o)} y le regala {b} a {F('es')}. {a} - {b} = {r}, "
               f"así que a {N('es')} le quedan {_es(r, o)}."),
        "fr": (f"{N('fr')} a {_fr(a, o)} et en donne {b} à {F('fr')}. "
               f"Combien {_de_fr_of(o.fr[1])} reste-t-il à {N('fr')} ?",
               f"{N('fr')} a {_fr(a, o)} et en donne {b} à {F('fr')}. {a} - {b} = {r}, "
               f"donc il reste {_fr(r, o)} à {N('fr')}."),
        "ru": (f"У {p.ru[1]} есть {_ru(a, o)}. {_cap(pr['ru'])} отдаёт {b} из них {f.ru[2]}. "
               f"Сколько {o.ru[3]} осталось у {p.ru[1]}?",
               f"У {p.ru[1]} {_ru(a, o)}, и {pr['ru']} отдаёт {b} из них {f.ru[2]}. {a} - {b} = {r}, "
               f"значит, теперь у {p.ru[1]} {_ru(r, o)}."),
        "zh": (f"{N('zh')}有{a}{zm}{zw}，给了{F('zh')}{b}{zm}。{N('zh')}还剩多少{zm}{zw}？",
               f"{N('zh')}有{a}{zm}{zw}，给了{F('zh')}{b}{zm}。{a} - {b} = {r}，所以{N('zh')}还剩{r}{zm}{zw}。"),
        "ja": (f"{N('ja')}は{jw}を{a}{jc}持っています。そのうち{b}{jc}を{F('ja')}にあげました。"
               f"{N('ja')}の{jw}は何{jc}残っていますか？",
               f"{N('ja')}は{jw}を{a}{jc}持っていて、{F('ja')}に{b}{jc}あげました。{a} - {b} = {r}なので、"
               f"{N('ja')}の{jw}は{r}{jc}残っています。"),
        # "anampa Anna" = gives (to) Anna; "amebakiwa na" = is left with.
        "sw": (f"{N('sw')} ana {_sw(a, o)}. Anampa {F('sw')} {_sw(b, o)}. "
               f"{N('sw')} amebakiwa na {_sw_ngapi(o)}?",
               f"{N('sw')} alikuwa na {_sw(a, o)}, akampa {F('sw')} {_sw(b, o)}. {a} - {b} = {r}, "
               f"kwa hiyo {N('sw')} amebakiwa na {_sw(r, o)}."),
    }


def _render_together(c: _Ctx) -> Texts:
    a, b = c.a, c.b
    r = a + b
    o, p, f = c.obj, c.person, c.friend
    N, F = p.name, f.name
    both_f = p.gender == "f" and f.gender == "f"  # only then "las dos", "elles", "她们"
    es_many = "Cuántas" if o.es[2] == "f" else "Cuántos"
    es_two = "las dos" if both_f else "los dos"
    fr_they = "elles" if both_f else "ils"
    zh_they = "她们" if both_f else "他们"
    zw, zm = o.zh
    jw, jc = o.ja
    return {
        "en": (f"{N('en')} has {_en(a, o)} and {F('en')} has {_en(b, o)}. "
               f"How many {o.en[1]} do they have together?",
               f"{N('en')} has {_en(a, o)} and {F('en')} has {_en(b, o)}. {a} + {b} = {r}, "
               f"so together they have {_en(r, o)}."),
        "de": (f"{N('de')} hat {_de(a, o)} und {F('de')} hat {_de(b, o)}. "
               f"Wie viele {o.de[1]} haben die beiden zusammen?",
               f"{N('de')} hat {_de(a, o)} und {F('de')} hat {_de(b, o)}. {a} + {b} = {r}, "
               f"also haben die beiden zusammen {_de(r, o)}."),
        "es": (f"{N('es')} tiene {_es(a, o)} y {F('es')} tiene {_es(b, o)}. "
               f"¿{es_many} {o.es[1]} tienen entre {es_two}?",
               f"{N('es')} tiene {_es(a, o)} y {F('es')} tiene {_es(b, o)}. {a} + {b} = {r}, "
               f"así que entre {es_two} tienen {_es(r, o)}."),
        "fr": (f"{N('fr')} a {_fr(a, o)} et {F('fr')} a {_fr(b, o)}. "
               f"Combien {_de_fr_of(o.fr[1])} ont-{fr_they} en tout ?",
               f"{N('fr')} a {_fr(a, o)} et {F('fr')} a {_fr(b, o)}. {a} + {b} = {r}, "
               f"donc {fr_they} ont {_fr(r, o)} en tout."),
        "ru": (f"У {p.ru[1]} {_ru(a, o)}, а у {f.ru[1]} — {_ru(b, o)}. Сколько {o.ru[3]} у них вместе?",
               f"У {p.ru[1]} {_ru(a, o)}, а у {f.ru[1]} — {_ru(b, o)}. {a} + {b} = {r}, "
               f"значит, вместе у них {_ru(r, o)}."),
        "zh": (f"{N('zh')}有{a}{zm}{zw}，{F('zh')}有{b}{zm}{zw}。{zh_they}一共有多少{zm}{zw}？",
               f"{N('zh')}有{a}{zm}{zw}，{F('zh')}有{b}{zm}{zw}。{a} + {b} = {r}，"
               f"所以{zh_they}一共有{r}{zm}{zw}。"),
        "ja": (f"{N('ja')}は{jw}を{a}{jc}、{F('ja')}は{b}{jc}持っています。"
               f"{N('ja')}と{F('ja')}は合わせて{jw}を何{jc}持っていますか？",
               f"{N('ja')}は{jw}を{a}{jc}、{F('ja')}は{b}{jc}持っています。{a} + {b} = {r}なので、"
               f"{N('ja')}と{F('ja')}は合わせて{jw}を{r}{jc}持っています。"),
        "sw": (f"{N('sw')} ana {_sw(a, o)} na {F('sw')} ana {_sw(b, o)}. "
               f"Wana {_sw_ngapi(o)} kwa pamoja?",
               f"{N('sw')} ana {_sw(a, o)} na {F('sw')} ana {_sw(b, o)}. {a} + {b} = {r}, "
               f"kwa hiyo kwa pamoja wana {_sw(r, o)}."),
    }


def _render_boxes(c: _Ctx) -> Texts:
    a, b = c.a, c.b
    r = a * b
    o, p = c.obj, c.person
    pr = _pron(p)
    N = p.name
    es_many = "Cuántas" if o.es[2] == "f" else "Cuántos"
    zw, zm = o.zh
    jw, jc = o.ja
    return {
        "en": (f"{N('en')} has {_en(a, _BOX)}. Each box contains {_en(b, o)}. "
               f"How many {o.en[1]} does {N('en')} have in total?",
               f"{N('en')} has {_en(a, _BOX)} with {_en(b, o)} in each box. {a} × {b} = {r}, "
               f"so {N('en')} has {_en(r, o)} in total."),
        "de": (f"{N('de')} hat {_de(a, _BOX)}. In jeder Kiste sind {_de(b, o)}. "
               f"Wie viele {o.de[1]} hat {N('de')} insgesamt?",
               # "mit je 6 Büchern": dative plural after "mit".
               f"{N('de')} hat {_de(a, _BOX)} mit je {_de(b, o, 'dat')}. {a} · {b} = {r}, "
               f"also hat {N('de')} insgesamt {_de(r, o)}."),
        "es": (f"{N('es')} tiene {_es(a, _BOX)}. En cada caja hay {_es(b, o)}. "
               f"¿{es_many} {o.es[1]} tiene {N('es')} en total?",
               f"{N('es')} tiene {_es(a, _BOX)} con {_es(b, o)} cada una. {a} × {b} = {r}, "
               f"así que {N('es')} tiene {_es(r, o)} en total."),
        "fr": (f"{N('fr')} a {_fr(a, _BOX)}. Chaque boîte contient {_fr(b, o)}. "
               f"Combien {_de_fr_of(o.fr[1])} {N('fr')} a-t-{pr['fr']} en tout ?",
               f"{N('fr')} a {_fr(a, _BOX)} de {_fr(b, o)}. {a} × {b} = {r}, "
               f"donc {N('fr')} a {_fr(r, o)} en tout."),
        "ru": (f"У {p.ru[1]} {_ru(a, _BOX)}. В каждой коробке {_ru(b, o)}. "
               f"Сколько всего {o.ru[3]} у {p.ru[1]}?",
               f"У {p.ru[1]} {_ru(a, _BOX)}, в каждой — {_ru(b, o)}. {a} · {b} = {r}, "
               f"значит, всего у {p.ru[1]} {_ru(r, o)}."),
        "zh": (f"{N('zh')}有{a}箱{zw}，每箱有{b}{zm}。{N('zh')}一共有多少{zm}{zw}？",
               f"{N('zh')}有{a}箱{zw}，每箱有{b}{zm}。{a} × {b} = {r}，所以{N('zh')}一共有{r}{zm}{zw}。"),
        "ja": (f"{N('ja')}は箱を{a}個持っています。どの箱にも{jw}が{b}{jc}入っています。"
               f"{N('ja')}の{jw}は全部で何{jc}ですか？",
               f"箱が{a}個あり、どの箱にも{jw}が{b}{jc}入っています。{a} × {b} = {r}なので、"
               f"{N('ja')}の{jw}は全部で{r}{jc}です。"),
        # "sanduku" (box) is in the JI/MA class: "kila sanduku lina" (each box has).
        "sw": (f"{N('sw')} ana {_sw(a, _BOX)}. Kila sanduku lina {_sw(b, o)}. "
               f"{N('sw')} ana {_sw_ngapi(o)} kwa jumla?",
               f"{N('sw')} ana {_sw(a, _BOX)}, na kila sanduku lina {_sw(b, o)}. {a} × {b} = {r}, "
               f"kwa hiyo {N('sw')} ana {_sw(r, o)} kwa jumla."),
    }


def _render_share(c: _Ctx) -> Texts:
    a, b = c.a, c.b
    r = a // b
    o, p = c.obj, c.person
    pr = _pron(p)
    N = p.name
    es_many = "Cuántas" if o.es[2] == "f" else "Cuántos"
    es_them = "las" if o.es[2] == "f" else "los"
    # Russian dative "раздаёт 4 детям" (but "21 ребёнку").
    ru_children = ru_plural(b, "ребёнку", "детям", "детям")
    zw, zm = o.zh
    jw, jc = o.ja
    return {
        "en": (f"{N('en')} has {_en(a, o)} and shares them equally among {b} children. "
               f"How many {o.en[1]} does each child get?",
               f"{N('en')} shares {_en(a, o)} equally among {b} children. {a} ÷ {b} = {r}, "
               f"so each child gets {_en(r, o)}."),
        "de": (f"{N('de')} hat {_de(a, o)} und verteilt sie gleichmäßig an {b} Kinder. "
               f"Wie viele {o.de[1]} bekommt jedes Kind?",
               f"{N('de')} verteilt {_de(a, o)} gleichmäßig an {b} Kinder. {a} : {b} = {r}, "
               f"also bekommt jedes Kind {_de(r, o)}."),
        "es": (f"{N('es')} tiene {_es(a, o)} y {es_them} reparte a partes iguales entre {b} niños. "
               f"¿{es_many} {o.es[1]} recibe cada niño?",
               f"{N('es')} reparte {_es(a, o)} a partes iguales entre {b} niños. {a} ÷ {b} = {r}, "
               f"así que cada niño recibe {_es(r, o)}."),
        "fr": (f"{N('fr')} a {_fr(a, o)} et les partage équitablement entre {b} enfants. "
               f"Combien {_de_fr_of(o.fr[1])} chaque enfant reçoit-il ?",
               f"{N('fr')} partage {_fr(a, o)} équitablement entre {b} enfants. {a} ÷ {b} = {r}, "
               f"donc chaque enfant reçoit {_fr(r, o)}."),
        "ru": (f"У {p.ru[1]} {_ru(a, o)}. {_cap(pr['ru'])} поровну раздаёт их {b} {ru_children}. "
               f"Сколько {o.ru[3]} получит каждый ребёнок?",
               f"{p.ru[0]} поровну раздаёт {_ru(a, o, 'acc')} {b} {ru_children}. {a} : {b} = {r}, "
               f"значит, каждый ребёнок получит {_ru(r, o, 'acc')}."),
        "zh": (f"{N('zh')}有{a}{zm}{zw}，平均分给{b}个孩子。每个孩子分到多少{zm}{zw}？",
               f"{N('zh')}把{a}{zm}{zw}平均分给{b}个孩子。{a} ÷ {b} = {r}，所以每个孩子分到{r}{zm}{zw}。"),
        "ja": (f"{N('ja')}は{jw}を{a}{jc}持っていて、{b}人の子どもに同じ数ずつ分けます。"
               f"子ども1人あたり{jw}を何{jc}もらえますか？",
               f"{a}{jc}の{jw}を{b}人の子どもで同じ数ずつ分けます。{a} ÷ {b} = {r}なので、"
               f"1人あたり{r}{jc}もらえます。"),
        # The object prefix agrees with the noun class: anayagawa (machungwa), anavigawa (vitabu),
        # anaigawa (mipira), anazigawa (pipi).
        "sw": (f"{N('sw')} ana {_sw(a, o)}. Ana{_SW_OBJECT[o.sw[2]]}gawa sawasawa kwa watoto {b}. "
               f"Kila mtoto anapata {_sw_ngapi(o)}?",
               f"{N('sw')} anagawa {_sw(a, o)} sawasawa kwa watoto {b}. {a} ÷ {b} = {r}, "
               f"kwa hiyo kila mtoto anapata {_sw(r, o)}."),
    }


def _render_pages_per_day(c: _Ctx) -> Texts:
    a, b = c.a, c.b
    r = a * b
    p = c.person
    pr = _pron(p)
    N = p.name
    return {
        "en": (f"{N('en')} reads {_en(a, _PAGE)} every day. How many pages does {N('en')} read in {_en(b, _DAY)}?",
               f"{N('en')} reads {_en(a, _PAGE)} a day for {_en(b, _DAY)}. {a} × {b} = {r}, "
               f"so {N('en')} reads {_en(r, _PAGE)}."),
        "de": (f"{N('de')} liest jeden Tag {_de(a, _PAGE)}. Wie viele Seiten liest {N('de')} in {_de(b, _DAY, 'dat')}?",
               f"{N('de')} liest {_de(b, _DAY)} lang jeden Tag {_de(a, _PAGE)}. {a} · {b} = {r}, "
               f"also liest {N('de')} {_de(r, _PAGE)}."),
        "es": (f"{N('es')} lee {_es(a, _PAGE)} cada día. ¿Cuántas páginas lee {N('es')} en {_es(b, _DAY)}?",
               f"{N('es')} lee {_es(a, _PAGE)} al día durante {_es(b, _DAY)}. {a} × {b} = {r}, "
               f"así que {N('es')} lee {_es(r, _PAGE)}."),
        "fr": (f"{N('fr')} lit {_fr(a, _PAGE)} par jour. "
               f"Combien de pages {N('fr')} lit-{pr['fr']} en {_fr(b, _DAY)} ?",
               f"{N('fr')} lit {_fr(a, _PAGE)} par jour pendant {_fr(b, _DAY)}. {a} × {b} = {r}, "
               f"donc {N('fr')} lit {_fr(r, _PAGE)}."),
        # "за 5 дней / за 2 дня / за 21 день": accusative after "за".
        "ru": (f"{p.ru[0]} читает {_ru(a, _PAGE, 'acc')} в день. "
               f"Сколько страниц {p.ru[0]} прочитает за {_ru(b, _DAY, 'acc')}?",
               f"Каждый день {p.ru[0]} читает {_ru(a, _PAGE, 'acc')}. {a} · {b} = {r}, "
               f"значит, за {_ru(b, _DAY, 'acc')} {pr['ru']} прочитает {_ru(r, _PAGE, 'acc')}."),
        "zh": (f"{N('zh')}每天读{a}页书。{N('zh')}在{b}天里一共读多少页？",
               f"{N('zh')}每天读{a}页，一共读{b}天。{a} × {b} = {r}，所以{N('zh')}一共读{r}页。"),
        "ja": (f"{N('ja')}は毎日、本を{a}ページ読みます。{N('ja')}は{b}日間で何ページ読みますか？",
               f"{N('ja')}は1日に{a}ページ読み、それを{b}日間続けます。{a} × {b} = {r}なので、"
               f"{b}日間で{r}ページ読みます。"),
        "sw": (f"{N('sw')} anasoma {_sw(a, _PAGE)} kila siku. Atasoma kurasa ngapi katika {_sw(b, _DAY)}?",
               f"{N('sw')} anasoma {_sw(a, _PAGE)} kila siku kwa {_sw(b, _DAY)}. {a} × {b} = {r}, "
               f"kwa hiyo atasoma {_sw(r, _PAGE)}."),
    }


def _de_each(noun: _Noun) -> str:
    return {"m": "Jeder", "f": "Jede", "n": "Jedes"}[noun.de[3]]


def _ru_each(noun: _Noun) -> str:
    return {"m": "каждый", "f": "каждая", "n": "каждое"}[noun.ru[4]]


def _render_price(c: _Ctx) -> Texts:
    q, k = c.q, c.c
    r = q * k
    o, p = c.obj, c.person
    pr = _pron(p)
    N = p.name
    zw, zm = o.zh
    jw, jc = o.ja
    return {
        "en": (f"{N('en')} buys {_en(q, o)}. Each {o.en[0]} costs {_en(k, _DOLLAR)}. "
               f"How many dollars does {N('en')} pay in total?",
               f"{N('en')} buys {_en(q, o)} at {_en(k, _DOLLAR)} each. {q} × {k} = {r}, "
               f"so {N('en')} pays {_en(r, _DOLLAR)}."),
        "de": (f"{N('de')} kauft {_de(q, o)}. {_de_each(o)} {o.de[0]} kostet {_de(k, _DOLLAR)}. "
               f"Wie viele Dollar bezahlt {N('de')} insgesamt?",
               f"{N('de')} kauft {_de(q, o)} zu je {_de(k, _DOLLAR)}. {q} · {k} = {r}, "
               f"also bezahlt {N('de')} {_de(r, _DOLLAR)}."),
        "es": (f"{N('es')} compra {_es(q, o)}. Cada {o.es[0]} cuesta {_es(k, _DOLLAR)}. "
               f"¿Cuántos dólares paga {N('es')} en total?",
               f"{N('es')} compra {_es(q, o)} a {_es(k, _DOLLAR)} {'cada una' if o.es[2] == 'f' else 'cada uno'}. "
               f"{q} × {k} = {r}, así que {N('es')} paga {_es(r, _DOLLAR)} en total."),
        "fr": (f"{N('fr')} achète {_fr(q, o)}. Chaque {o.fr[0]} coûte {_fr(k, _DOLLAR)}. "
               f"Combien de dollars {N('fr')} paie-t-{pr['fr']} en tout ?",
               f"{N('fr')} achète {_fr(q, o)} à {_fr(k, _DOLLAR)} l'unité. {q} × {k} = {r}, "
               f"donc {N('fr')} paie {_fr(r, _DOLLAR)}."),
        "ru": (f"{p.ru[0]} покупает {_ru(q, o, 'acc')}. {_cap(_ru_each(o))} {o.ru[0]} стоит {_ru(k, _DOLLAR, 'acc')}. "
               f"Сколько всего долларов заплатит {p.ru[0]}?",
               f"{p.ru[0]} покупает {_ru(q, o, 'acc')}, и {_ru_each(o)} {o.ru[0]} стоит {_ru(k, _DOLLAR, 'acc')}. "
               f"{q} · {k} = {r}, значит, {p.ru[0]} заплатит {_ru(r, _DOLLAR, 'acc')}."),
        "zh": (f"{N('zh')}买了{q}{zm}{zw}，每{zm}{k}美元。{N('zh')}一共要付多少美元？",
               f"{N('zh')}买了{q}{zm}{zw}，每{zm}{k}美元。{q} × {k} = {r}，所以{N('zh')}一共要付{r}美元。"),
        "ja": (f"{N('ja')}は{jw}を{q}{jc}買いました。{jw}は1{jc}{k}ドルです。"
               f"{N('ja')}は全部で何ドル払いましたか？",
               f"{jw}は1{jc}{k}ドルで、{N('ja')}は{q}{jc}買いました。{q} × {k} = {r}なので、"
               f"{N('ja')}は全部で{r}ドル払いました。"),
        # "kila kitabu kinagharimu", "kila chungwa linagharimu", "kila mpira unagharimu":
        # the verb takes the subject prefix of the singular noun's class.
        "sw": (f"{N('sw')} ananunua {_sw(q, o)}. Kila {o.sw[0]} {o.sw[3]}nagharimu {_sw(k, _DOLLAR)}. "
               f"{N('sw')} atalipa dola ngapi kwa jumla?",
               f"{N('sw')} ananunua {_sw(q, o)}, na kila {o.sw[0]} {o.sw[3]}nagharimu {_sw(k, _DOLLAR)}. "
               f"{q} × {k} = {r}, kwa hiyo {N('sw')} atalipa {_sw(r, _DOLLAR)}."),
    }


def _render_bags_give_away(c: _Ctx) -> Texts:
    a, b, k = c.a, c.b, c.c
    r1 = a * b
    r = r1 - k
    o, p, f = c.obj, c.person, c.friend
    pr = _pron(p)
    N, F = p.name, f.name
    es_many = "Cuántas" if o.es[2] == "f" else "Cuántos"
    zw, zm = o.zh
    jw, jc = o.ja
    return {
        "en": (f"{N('en')} buys {_en(a, _BAG)} of {o.en[1]} with {_en(b, o)} in each bag. "
               f"Then {pr['en']} gives {_en(k, o)} to {F('en')}. How many {o.en[1]} does {N('en')} have now?",
               f"{N('en')} buys {a} × {b} = {_en(r1, o)}. After giving {k} to {F('en')}, "
               f"{pr['en']} has {r1} - {k} = {_en(r, o)} left."),
        "de": (f"{N('de')} kauft {_de(a, _BAG)} mit je {_de(b, o, 'dat')}. "
               f"Dann schenkt {pr['de']} {F('de')} {_de(k, o)}. Wie viele {o.de[1]} hat {N('de')} jetzt?",
               f"{N('de')} kauft {a} · {b} = {_de(r1, o)}. Dann verschenkt {pr['de']} {k} davon an {F('de')}, "
               f"also bleiben {pr['de_dat']} {r1} - {k} = {_de(r, o)}."),
        "es": (f"{N('es')} compra {_es(a, _BAG)} con {_es(b, o)} cada una. "
               f"Después le regala {_es(k, o)} a {F('es')}. ¿{es_many} {o.es[1]} tiene {N('es')} ahora?",
               f"{N('es')} compra {a} × {b} = {_es(r1, o)}. Después le regala {k} a {F('es')}, "
               f"así que le quedan {r1} - {k} = {_es(r, o)}."),
        "fr": (f"{N('fr')} achète {_fr(a, _BAG)} de {_fr(b, o)}. Ensuite, {pr['fr']} donne {_fr(k, o)} "
               f"à {F('fr')}. Combien {_de_fr_of(o.fr[1])} {N('fr')} a-t-{pr['fr']} maintenant ?",
               f"{N('fr')} achète {a} × {b} = {_fr(r1, o)}. Après en avoir donné {k} à {F('fr')}, "
               f"il lui en reste {r1} - {k} = {r}."),
        "ru": (f"{p.ru[0]} покупает {_ru(a, _BAG, 'acc')} {o.ru[3]}, в каждом пакете — {_ru(b, o)}. "
               f"Потом {pr['ru']} отдаёт {_ru(k, o, 'acc')} {f.ru[2]}. Сколько {o.ru[3]} теперь у {p.ru[1]}?",
               f"Всего {p.ru[0]} покупает {a} · {b} = {_ru(r1, o, 'acc')}. {_cap(pr['ru'])} отдаёт {k} "
               f"{f.ru[2]}, поэтому у {pr['ru_gen']} остаётся {r1} - {k} = {_ru(r, o)}."),
        "zh": (f"{N('zh')}买了{a}袋{zw}，每袋{b}{zm}。然后{pr['zh']}给了{F('zh')}{k}{zm}。"
               f"{N('zh')}现在有多少{zm}{zw}？",
               f"{N('zh')}一共买了{a} × {b} = {r1}{zm}{zw}。给了{F('zh')}{k}{zm}以后，"
               f"还剩{r1} - {k} = {r}{zm}。"),
        "ja": (f"{N('ja')}は{jw}が{b}{jc}入った袋を{a}袋買いました。そのあと、{F('ja')}に{jw}を{k}{jc}あげました。"
               f"{N('ja')}は今、{jw}を何{jc}持っていますか？",
               f"{b}{jc}入りの袋が{a}袋なので、{a} × {b} = {r1}{jc}です。{F('ja')}に{k}{jc}あげたので、"
               f"{r1} - {k} = {r}{jc}残ります。"),
        "sw": (f"{N('sw')} ananunua {_sw(a, _BAG)} ya {o.sw[1]}, na kila mfuko una {_sw(b, o)}. "
               f"Kisha anampa {F('sw')} {_sw(k, o)}. Sasa {N('sw')} ana {_sw_ngapi(o)}?",
               f"{N('sw')} ananunua {o.sw[1]} {a} × {b} = {r1}. Anampa {F('sw')} {_sw(k, o)}, "
               f"kwa hiyo amebakiwa na {o.sw[1]} {r1} - {k} = {r}."),
    }


_VEHICLES = {
    # level 3: a bus; level 4 (hundreds of passengers): a train
    "bus": {"en": ("bus", "stop"), "de": ("Bus", "An der nächsten Haltestelle"),
            "es": ("autobús", "parada"), "fr": ("bus", "Au prochain arrêt"),
            "ru": ("автобусе", "остановке"), "zh": ("公交车",), "ja": ("バス", "次のバス停"),
            "sw": ("basi",)},
    "train": {"en": ("train", "station"), "de": ("Zug", "Am nächsten Bahnhof"),
              "es": ("tren", "estación"), "fr": ("train", "À la prochaine gare"),
              "ru": ("поезде", "станции"), "zh": ("火车",), "ja": ("電車", "次の駅"),
              "sw": ("treni",)},
}


def _render_bus(c: _Ctx) -> Texts:
    a, b, k = c.a, c.b, c.c
    r1 = a - b
    r = r1 + k
    v = _VEHICLES["bus" if c.level <= 3 else "train"]
    P = _PASSENGER
    # Russian verbs before a numeral subject agree with it: "едет 21 пассажир", "едут 25 пассажиров".
    ru_ride = ru_plural(a, "едет", "едут", "едут")
    ru_off = ru_plural(b, "выходит", "выходят", "выходят")
    ru_on = ru_plural(k, "садится", "садятся", "садятся")
    return {
        "en": (f"There are {_en(a, P)} on a {v['en'][0]}. At the next {v['en'][1]}, {_en(b, P)} get off "
               f"and {_en(k, P)} get on. How many people are on the {v['en'][0]} now?",
               f"After {_en(b, P)} get off, there are {a} - {b} = {_en(r1, P)} on the {v['en'][0]}. "
               f"Then {_en(k, P)} get on: {r1} + {k} = {r}. So there are {_en(r, P)} on the {v['en'][0]} now."),
        "de": (f"Im {v['de'][0]} sind {_de(a, P)}. {v['de'][1]} steigen {_de(b, P)} aus und {_de(k, P)} ein. "
               f"Wie viele Fahrgäste sind jetzt im {v['de'][0]}?",
               f"Nachdem {_de(b, P)} ausgestiegen sind, sind noch {a} - {b} = {_de(r1, P)} im {v['de'][0]}. "
               f"Dann steigen {_de(k, P)} ein: {r1} + {k} = {r}. Jetzt sind also {_de(r, P)} im {v['de'][0]}."),
        "es": (f"En un {v['es'][0]} van {_es(a, P)}. En la siguiente {v['es'][1]} se bajan {_es(b, P)} "
               f"y se suben {_es(k, P)}. ¿Cuántos pasajeros hay ahora en el {v['es'][0]}?",
               f"Cuando se bajan {_es(b, P)}, quedan {a} - {b} = {_es(r1, P)}. Luego se suben {_es(k, P)}: "
               f"{r1} + {k} = {r}. Ahora hay {_es(r, P)} en el {v['es'][0]}."),
        "fr": (f"Il y a {_fr(a, P)} dans le {v['fr'][0]}. {v['fr'][1]}, {_fr(b, P)} descendent et "
               f"{_fr(k, P)} montent. Combien de passagers y a-t-il maintenant dans le {v['fr'][0]} ?",
               f"Quand {_fr(b, P)} descendent, il en reste {a} - {b} = {r1}. Ensuite, {_fr(k, P)} montent : "
               f"{r1} + {k} = {r}. Il y a donc maintenant {_fr(r, P)} dans le {v['fr'][0]}."),
        "ru": (f"В {v['ru'][0]} {ru_ride} {_ru(a, P)}. На следующей {v['ru'][1]} {ru_off} {_ru(b, P)}, "
               f"а {ru_on} {_ru(k, P)}. Сколько пассажиров теперь в {v['ru'][0]}?",
               f"Когда {ru_off} {_ru(b, P)}, в {v['ru'][0]} остаётся {a} - {b} = {_ru(r1, P)}. "
               f"Потом {ru_on} ещё {_ru(k, P)}: {r1} + {k} = {r}. Значит, теперь в {v['ru'][0]} {_ru(r, P)}."),
        "zh": (f"{v['zh'][0]}上有{_zh(a, P)}。到了下一站，有{_zh(b, P)}下车，又有{_zh(k, P)}上车。"
               f"现在{v['zh'][0]}上有多少名乘客？",
               f"{_zh(b, P)}下车后，车上还有{a} - {b} = {_zh(r1, P)}。又有{_zh(k, P)}上车，"
               f"{r1} + {k} = {r}。所以现在{v['zh'][0]}上有{_zh(r, P)}。"),
        "ja": (f"{v['ja'][0]}に乗客が{a}人乗っています。{v['ja'][1]}で{b}人が降りて、{k}人が乗りました。"
               f"今、{v['ja'][0]}に乗客は何人乗っていますか？",
               f"{b}人が降りたので、{a} - {b} = {r1}人になります。そのあと{k}人が乗ったので、"
               f"{r1} + {k} = {r}人です。今、{v['ja'][0]}には乗客が{r}人乗っています。"),
        "sw": (f"Kuna {_sw(a, P)} ndani ya {v['sw'][0]}. Katika kituo kinachofuata, {_sw(b, P)} wanashuka "
               f"na {_sw(k, P)} wanapanda. Sasa kuna {_sw_ngapi(P)} ndani ya {v['sw'][0]}?",
               f"Baada ya {_sw(b, P)} kushuka, kuna abiria {a} - {b} = {r1}. Kisha {_sw(k, P)} wanapanda: "
               f"{r1} + {k} = {r}. Kwa hiyo sasa kuna {_sw(r, P)} ndani ya {v['sw'][0]}."),
    }


def _render_savings(c: _Ctx) -> Texts:
    s, a, w = c.s, c.a, c.w
    r1 = a * w
    r = s + r1
    p = c.person
    pr = _pron(p)
    N = p.name
    D = _DOLLAR
    return {
        "en": (f"{N('en')} has {_en(s, D)} and saves {_en(a, D)} every week. "
               f"How many dollars will {N('en')} have after {_en(w, _WEEK)}?",
               f"In {_en(w, _WEEK)}, {N('en')} saves {a} × {w} = {_en(r1, D)}. Together with the {_en(s, D)} "
               f"{pr['en']} already has, that makes {s} + {r1} = {_en(r, D)}."),
        "de": (f"{N('de')} hat {_de(s, D)} und spart jede Woche {_de(a, D)} dazu. "
               f"Wie viele Dollar hat {N('de')} nach {_de(w, _WEEK, 'dat')}?",
               f"In {_de(w, _WEEK, 'dat')} spart {N('de')} {a} · {w} = {_de(r1, D)}. Zusammen mit den "
               f"{_de(s, D, 'dat')}, die {pr['de']} schon hat, sind das {s} + {r1} = {_de(r, D)}."),
        "es": (f"{N('es')} tiene {_es(s, D)} y ahorra {_es(a, D)} cada semana. "
               f"¿Cuántos dólares tendrá {N('es')} después de {_es(w, _WEEK)}?",
               f"En {_es(w, _WEEK)}, {N('es')} ahorra {a} × {w} = {_es(r1, D)}. Sumados a los {_es(s, D)} "
               f"que ya tiene, son {s} + {r1} = {_es(r, D)}."),
        "fr": (f"{N('fr')} a {_fr(s, D)} et économise {_fr(a, D)} chaque semaine. "
               f"Combien de dollars {N('fr')} aura-t-{pr['fr']} au bout de {_fr(w, _WEEK)} ?",
               f"En {_fr(w, _WEEK)}, {N('fr')} économise {a} × {w} = {_fr(r1, D)}. Avec les {_fr(s, D)} "
               f"qu'{pr['fr']} a déjà, cela fait {s} + {r1} = {_fr(r, D)}."),
        # "через 8 недель / через 2 недели / через 21 неделю": accusative after "через".
        "ru": (f"У {p.ru[1]} есть {_ru(s, D)}, и каждую неделю {pr['ru']} откладывает ещё {_ru(a, D, 'acc')}. "
               f"Сколько долларов будет у {p.ru[1]} через {_ru(w, _WEEK, 'acc')}?",
               f"За {_ru(w, _WEEK, 'acc')} {p.ru[0]} отложит {a} · {w} = {_ru(r1, D, 'acc')}. Прибавим то, "
               f"что у {pr['ru_gen']} уже было: {s} + {r1} = {r}. Значит, через {_ru(w, _WEEK, 'acc')} "
               f"у {p.ru[1]} будет {_ru(r, D)}."),
        "zh": (f"{N('zh')}已经有{s}美元，每周再存{a}美元。{w}周后{N('zh')}一共有多少美元？",
               f"{w}周里{N('zh')}存了{a} × {w} = {r1}美元。再加上原来的{s}美元，{s} + {r1} = {r}。"
               f"所以{w}周后{N('zh')}一共有{r}美元。"),
        "ja": (f"{N('ja')}は{s}ドル持っていて、毎週{a}ドルずつ貯金します。"
               f"{w}週間後、{N('ja')}は全部で何ドル持っていますか？",
               f"{w}週間で{a} × {w} = {r1}ドル貯金します。もともと持っていた{s}ドルと合わせると、"
               f"{s} + {r1} = {r}ドルです。"),
        # "dola alizokuwa nazo" = the dollars he/she already had (N-class plural relative "-zo").
        "sw": (f"{N('sw')} ana {_sw(s, D)} na anaweka akiba ya {_sw(a, D)} kila wiki. "
               f"Baada ya {_sw(w, _WEEK)}, {N('sw')} atakuwa na dola ngapi?",
               f"Katika {_sw(w, _WEEK)}, {N('sw')} anaweka akiba ya dola {a} × {w} = {r1}. "
               f"Akiongeza {_sw(s, D)} alizokuwa nazo, {s} + {r1} = {r}. "
               f"Kwa hiyo {N('sw')} atakuwa na {_sw(r, D)}."),
    }


def _render_change(c: _Ctx) -> Texts:
    q, k, bill = c.q, c.c, c.p
    r1 = q * k
    r = bill - r1
    o, p = c.obj, c.person
    pr = _pron(p)
    N = p.name
    D = _DOLLAR
    zw, zm = o.zh
    jw, jc = o.ja
    es_each = "cada una" if o.es[2] == "f" else "cada uno"
    es_the = "Las" if o.es[2] == "f" else "Los"
    return {
        "en": (f"{N('en')} buys {_en(q, o)} that cost {_en(k, D)} each and pays with {_en(bill, D)}. "
               f"How many dollars does {N('en')} get back in change?",
               f"The {o.en[1]} cost {q} × {k} = {_en(r1, D)}. {N('en')} pays with {_en(bill, D)}, "
               f"so the change is {bill} - {r1} = {_en(r, D)}."),
        "de": (f"{N('de')} kauft {_de(q, o)} zu je {_de(k, D)} und bezahlt mit {_de(bill, D)}. "
               f"Wie viele Dollar Wechselgeld bekommt {N('de')} zurück?",
               f"Die {o.de[1]} kosten {q} · {k} = {_de(r1, D)}. {N('de')} bezahlt mit {_de(bill, D)}, "
               f"also bekommt {pr['de']} {bill} - {r1} = {_de(r, D)} zurück."),
        "es": (f"{N('es')} compra {_es(q, o)} a {_es(k, D)} {es_each} y paga con {_es(bill, D)}. "
               f"¿Cuántos dólares le devuelven a {N('es')}?",
               f"{es_the} {o.es[1]} cuestan {q} × {k} = {_es(r1, D)}. {N('es')} paga con {_es(bill, D)}, "
               f"así que le devuelven {bill} - {r1} = {_es(r, D)}."),
        "fr": (f"{N('fr')} achète {_fr(q, o)} à {_fr(k, D)} l'unité et paie avec {_fr(bill, D)}. "
               f"Combien de dollars de monnaie {N('fr')} reçoit-{pr['fr']} ?",
               f"Les {o.fr[1]} coûtent {q} × {k} = {_fr(r1, D)}. {N('fr')} paie avec {_fr(bill, D)}, "
               f"donc {pr['fr']} reçoit {bill} - {r1} = {_fr(r, D)} de monnaie."),
        "ru": (f"{p.ru[0]} покупает {_ru(q, o, 'acc')}, {_ru_each(o)} стоит {_ru(k, D, 'acc')}. "
               f"{_cap(pr['ru'])} даёт продавцу {_ru(bill, D, 'acc')}. Сколько долларов сдачи получит {p.ru[0]}?",
               f"Покупка стоит {q} · {k} = {_ru(r1, D, 'acc')}. {p.ru[0]} даёт {_ru(bill, D, 'acc')}, "
               f"значит, сдача — {bill} - {r1} = {_ru(r, D)}."),
        "zh": (f"{N('zh')}买了{q}{zm}{zw}，每{zm}{k}美元。{pr['zh']}付了{bill}美元，应该找回多少美元？",
               f"{q}{zm}{zw}一共{q} × {k} = {r1}美元。{N('zh')}付了{bill}美元，"
               f"所以应该找回{bill} - {r1} = {r}美元。"),
        "ja": (f"{N('ja')}は1{jc}{k}ドルの{jw}を{q}{jc}買い、{bill}ドル払いました。おつりは何ドルですか？",
               f"{jw}の代金は{q} × {k} = {r1}ドルです。{bill}ドル払ったので、おつりは{bill} - {r1} = {r}ドルです。"),
        "sw": (f"{N('sw')} ananunua {_sw(q, o)}, kila {o.sw[0]} kwa {_sw(k, D)}, na analipa {_sw(bill, D)}. "
               f"{N('sw')} atapata chenji ya dola ngapi?",
               f"Bei ya jumla ni dola {q} × {k} = {r1}. {N('sw')} analipa {_sw(bill, D)}, "
               f"kwa hiyo chenji ni dola {bill} - {r1} = {r}."),
    }


def _render_book_left(c: _Ctx) -> Texts:
    t, a, b = c.t, c.a, c.b
    r1 = a * b
    r = t - r1
    p = c.person
    pr = _pron(p)
    N = p.name
    ru_read, ru_read_pf = ("читал", "прочитал") if p.gender == "m" else ("читала", "прочитала")
    return {
        "en": (f"A book has {_en(t, _PAGE)}. {N('en')} reads {_en(a, _PAGE)} a day for {_en(b, _DAY)}. "
               f"How many pages does {N('en')} still have to read?",
               f"In {_en(b, _DAY)}, {N('en')} reads {a} × {b} = {_en(r1, _PAGE)}. {t} - {r1} = {r}, "
               f"so {N('en')} still has {_en(r, _PAGE)} to read."),
        "de": (f"Ein Buch hat {_de(t, _PAGE)}. {N('de')} liest {_de(b, _DAY)} lang jeden Tag {_de(a, _PAGE)}. "
               f"Wie viele Seiten muss {N('de')} noch lesen?",
               f"In {_de(b, _DAY, 'dat')} liest {N('de')} {a} · {b} = {_de(r1, _PAGE)}. {t} - {r1} = {r}, "
               f"also muss {N('de')} noch {_de(r, _PAGE)} lesen."),
        "es": (f"Un libro tiene {_es(t, _PAGE)}. {N('es')} lee {_es(a, _PAGE)} al día durante {_es(b, _DAY)}. "
               f"¿Cuántas páginas le quedan por leer?",
               f"En {_es(b, _DAY)}, {N('es')} lee {a} × {b} = {_es(r1, _PAGE)}. {t} - {r1} = {r}, "
               f"así que a {N('es')} le quedan {_es(r, _PAGE)} por leer."),
        "fr": (f"Un livre compte {_fr(t, _PAGE)}. {N('fr')} lit {_fr(a, _PAGE)} par jour pendant "
               f"{_fr(b, _DAY)}. Combien de pages lui reste-t-il à lire ?",
               f"En {_fr(b, _DAY)}, {N('fr')} lit {a} × {b} = {_fr(r1, _PAGE)}. {t} - {r1} = {r}, "
               f"donc il reste {_fr(r, _PAGE)} à lire à {N('fr')}."),
        # "в течение 6 дней / 21 дня": genitive after "в течение". Past tense, so the verb agrees with
        # the reader: читал / читала.
        "ru": (f"В книге {_ru(t, _PAGE)}. {p.ru[0]} {ru_read} {_ru(a, _PAGE, 'acc')} в день в течение "
               f"{_ru(b, _DAY, 'gen')}. Сколько страниц {pr['ru_dat']} ещё осталось прочитать?",
               f"За {_ru(b, _DAY, 'acc')} {p.ru[0]} {ru_read_pf} {a} · {b} = {_ru(r1, _PAGE, 'acc')}. "
               f"{t} - {r1} = {r}, значит, {pr['ru_dat']} осталось прочитать {_ru(r, _PAGE, 'acc')}."),
        "zh": (f"一本书有{t}页。{N('zh')}每天读{a}页，读了{b}天。{N('zh')}还剩多少页没有读？",
               f"{b}天里{N('zh')}读了{a} × {b} = {r1}页。{t} - {r1} = {r}，所以{N('zh')}还剩{r}页没有读。"),
        "ja": (f"{t}ページの本があります。{N('ja')}は1日に{a}ページずつ、{b}日間読みました。"
               f"残りは何ページですか？",
               f"{b}日間で{a} × {b} = {r1}ページ読みました。{t} - {r1} = {r}なので、残りは{r}ページです。"),
        "sw": (f"Kitabu kina {_sw(t, _PAGE)}. {N('sw')} anasoma {_sw(a, _PAGE)} kila siku kwa {_sw(b, _DAY)}. "
               f"{N('sw')} amebakiwa na kurasa ngapi za kusoma?",
               f"Katika {_sw(b, _DAY)}, {N('sw')} anasoma kurasa {a} × {b} = {r1}. {t} - {r1} = {r}, "
               f"kwa hiyo amebakiwa na {_sw(r, _PAGE)} za kusoma."),
    }


def _render_bake_share(c: _Ctx) -> Texts:
    a, b, k = c.a, c.b, c.c
    r1 = a * b
    r = r1 // k
    p = c.person
    pr = _pron(p)
    N = p.name
    R = _ROLL
    ru_children = ru_plural(k, "ребёнку", "детям", "детям")
    return {
        "en": (f"{N('en')} bakes {_en(a, _TRAY)} of bread rolls with {_en(b, R)} on each tray. "
               f"{_cap(pr['en'])} shares all the bread rolls equally among {k} children. "
               f"How many bread rolls does each child get?",
               f"{N('en')} bakes {a} × {b} = {_en(r1, R)}. {r1} ÷ {k} = {r}, so each child gets {_en(r, R)}."),
        "de": (f"{N('de')} backt {_de(a, _TRAY)} mit je {_de(b, R, 'dat')} und verteilt alle Brötchen "
               f"gleichmäßig an {k} Kinder. Wie viele Brötchen bekommt jedes Kind?",
               f"{N('de')} backt {a} · {b} = {_de(r1, R)}. {r1} : {k} = {r}, also bekommt jedes Kind {_de(r, R)}."),
        "es": (f"{N('es')} hornea {_es(a, _TRAY)} con {_es(b, R)} cada una y reparte todos los panecillos "
               f"a partes iguales entre {k} niños. ¿Cuántos panecillos recibe cada niño?",
               f"{N('es')} hornea {a} × {b} = {_es(r1, R)}. {r1} ÷ {k} = {r}, "
               f"así que cada niño recibe {_es(r, R)}."),
        "fr": (f"{N('fr')} fait cuire {_fr(a, _TRAY)} de {_fr(b, R)} et partage tous les petits pains "
               f"équitablement entre {k} enfants. Combien de petits pains chaque enfant reçoit-il ?",
               f"{N('fr')} fait cuire {a} × {b} = {_fr(r1, R)}. {r1} ÷ {k} = {r}, "
               f"donc chaque enfant reçoit {_fr(r, R)}."),
        "ru": (f"{p.ru[0]} печёт {_ru(a, _TRAY, 'acc')} булочек, на каждом противне — {_ru(b, R)}. "
               f"Все булочки {pr['ru']} поровну раздаёт {k} {ru_children}. "
               f"Сколько булочек получит каждый ребёнок?",
               f"{p.ru[0]} печёт {a} · {b} = {_ru(r1, R, 'acc')}. {r1} : {k} = {r}, "
               f"значит, каждый ребёнок получит {_ru(r, R, 'acc')}."),
        "zh": (f"{N('zh')}烤了{a}盘面包，每盘{b}个。{pr['zh']}把这些面包平均分给{k}个孩子。"
               f"每个孩子分到多少个面包？",
               f"{N('zh')}一共烤了{a} × {b} = {r1}个面包。{r1} ÷ {k} = {r}，所以每个孩子分到{r}个面包。"),
        "ja": (f"{N('ja')}はパンを焼きました。天板は{a}枚で、どの天板にもパンが{b}個のっています。"
               f"焼いたパンを全部、{k}人の子どもに同じ数ずつ分けます。子ども1人あたりパンを何個もらえますか？",
               f"焼いたパンは全部で{a} × {b} = {r1}個です。{r1} ÷ {k} = {r}なので、1人あたり{r}個もらえます。"),
        # "sinia" (tray) is N class: "kila sinia ina"; "anaigawa mikate yote" (MI class object prefix i-).
        "sw": (f"{N('sw')} anaoka {_sw(a, _TRAY)} za mikate, na kila sinia ina {_sw(b, R)}. "
               f"Anaigawa mikate yote sawasawa kwa watoto {k}. Kila mtoto anapata {_sw_ngapi(R)}?",
               f"{N('sw')} anaoka mikate {a} × {b} = {r1}. {r1} ÷ {k} = {r}, "
               f"kwa hiyo kila mtoto anapata {_sw(r, R)}."),
    }


