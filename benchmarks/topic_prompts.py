"""A labelled set of product prompts for the topic and rephrase benchmarks (deterministic).

    from topic_prompts import prompts, rephrase_pairs
    texts, labels = prompts(10_000, seed=7)        # labels: the intent, "noise" for chatter
    pairs = rephrase_pairs(2_000, seed=7)          # [(previous, prompt, is_rephrase)]

    python benchmarks/topic_prompts.py 20          # print a sample

Sixteen intents of a SaaS / shop assistant, each made of a few *questions*, each question of
several paraphrases (different words for one ask), with slots (order numbers, products,
languages, apps). A prompt is a paraphrase of a question of its intent, then: typos in ~15%
(a swapped, dropped or doubled letter), a context sentence before or after it in ~25%, another
language (French, German or Spanish) in ~5%, and ~4% chatter that belongs to no intent
("hi", "test", a pasted stack trace). Intents share generic words (account, order, plan, team,
email) so that no single word separates them.

A rephrase pair is the same question asked again (another paraphrase: a question's first two are, the same one with typos
fixed or made, "please" or an impatient remark added, words reordered); a non-rephrase pair is
a follow-up on another question of the same intent (the usual next turn), or another intent.
"""

from __future__ import annotations

import random
import sys

ORDER = "{n}"
INTENTS: dict[str, list[list[str]]] = {
    "refund": [
        ["how do I get a refund for order {n}", "I want my money back for order {n}",
         "refund order {n} please", "can you refund my purchase {n}, the {product} was broken",
         "request a refund for the {product} I bought"],
        ["how long does a refund take", "when will the money be back on my card",
         "refund still not received after two weeks", "how many days until I see the refund"],
        ["can I get store credit instead of a refund", "exchange the {product} instead of refunding it",
         "swap my {product} for another size rather than money back"],
    ],
    "password": [
        ["reset my password", "I forgot my password, how do I reset it", "password reset link not working",
         "the reset email never arrives", "how to change password for my account"],
        ["my account is locked after too many login attempts", "locked out of my account",
         "can't log in, it says account locked", "unlock my account please"],
        ["set up two factor authentication", "how do I enable 2fa on login",
         "lost my phone with the authenticator app, can't sign in"],
    ],
    "invoice": [
        ["download the invoice for march", "where can I find my invoices", "send me a pdf invoice for order {n}",
         "I need an invoice copy for accounting"],
        ["change the billing address on my invoice", "company name is wrong on the invoice",
         "add our VAT number to the invoices", "update tax id on billing details"],
        ["why was I charged twice this month", "double charge on my credit card",
         "unexpected charge of 49 dollars on my card statement"],
    ],
    "shipping": [
        ["where is my parcel {n}", "track my order {n}", "tracking number for order {n} does not work",
         "my package has not arrived yet", "when will order {n} be delivered"],
        ["change the delivery address of order {n}", "ship to a different address",
         "can I update the shipping address after ordering"],
        ["how long is delivery to {country}", "how many days does shipping to {country} take", "do you ship to {country}",
         "shipping costs to {country}"],
    ],
    "cancel": [
        ["cancel my subscription", "how do I stop my monthly subscription", "I want to unsubscribe from the paid plan",
         "end my membership before it renews", "turn off auto renewal"],
        ["will I be charged if I cancel mid month", "do I get money back if I cancel the subscription now",
         "what happens to my data after cancelling"],
    ],
    "pricing": [
        ["what does the business plan cost", "how much is the business plan", "upgrade to the pro plan", "compare pricing plans",
         "how much is the team plan per seat", "is there a discount for annual billing"],
        ["add more seats to our team plan", "buy five extra seats", "increase the number of users on our plan"],
        ["do you have a student discount", "student discount available?", "nonprofit pricing available?", "free trial length for pro"],
    ],
    "api": [
        ["where do I find my api key", "where is my api key shown", "generate a new api token", "rotate the api key for production",
         "my api key was leaked, revoke it"],
        ["api returns 401 unauthorized", "the api says 401 unauthorized for my key", "getting 429 too many requests from the api",
         "the endpoint /v2/events returns 500 internal server error", "rate limit exceeded on api calls"],
        ["connect {app} to your api", "how do I integrate {app} with your api", "set up the webhook for {app}", "integration with {app} stopped syncing"],
    ],
    "export": [
        ["export my data to csv", "download all records as a spreadsheet", "how can I export the report to excel",
         "export dashboard as csv file"],
        ["schedule a weekly export to {app}", "automatic daily csv export by email",
         "send the report export every monday"],
    ],
    "delete_account": [
        ["delete my account permanently", "remove all my personal data", "close my account and erase everything",
         "gdpr request to delete my data", "how do I delete my profile"],
        ["download a copy of my personal data", "gdpr data access request", "what data do you store about me"],
    ],
    "crash": [
        ["the app crashes when I open settings", "app keeps crashing on {device}", "mobile app closes right after launch",
         "crash on startup since the last update"],
        ["the page is blank after login", "dashboard stuck loading forever", "spinner never stops on the reports page",
         "white screen in {browser}"],
    ],
    "email_draft": [
        ["write an email to a customer apologizing for the delay", "draft an apology email to a customer about the delay",
         "draft a polite reply to an angry customer",
         "compose an email declining a meeting", "help me write a follow up email after the demo"],
        ["make this email more formal", "rewrite this email in a more formal tone", "shorten this email to three sentences", "rewrite my message in a friendlier tone"],
    ],
    "summarize": [
        ["summarize this article in five bullet points", "give me a short summary of the meeting notes",
         "tl;dr of this document", "summarise the attached report"],
        ["extract the action items from these notes", "list the key decisions from the transcript",
         "what are the main takeaways of this call"],
    ],
    "sql": [
        ["write a sql query to count users per month", "sql query counting users by month", "sql to find duplicate emails in the customers table",
         "how to join orders and customers in postgres", "group by week in sql"],
        ["why is my query so slow", "optimize this select with a subquery", "which index speeds up this join"],
    ],
    "translate": [
        ["translate this paragraph into {lang}", "put this paragraph in {lang}", "how do you say good morning in {lang}",
         "translate the product description to {lang}", "can you put this text in {lang}"],
        ["is this translation correct", "check my {lang} grammar", "proofread this {lang} sentence"],
    ],
    "team": [
        ["invite a colleague to my workspace", "add a new member to the team", "how do I invite users by email",
         "send a team invitation to alice@example.com"],
        ["give admin rights to a teammate", "make my teammate an admin", "change a member's role to viewer", "remove someone from the workspace",
         "who can edit permissions in our team"],
    ],
    "notifications": [
        ["stop sending me notification emails", "turn off push notifications", "too many alerts, how do I mute them",
         "unsubscribe from the weekly digest email"],
        ["notify me when a report is ready", "send me an alert once the report is ready", "set up slack notifications for new orders",
         "get an alert when usage goes above the limit"],
    ],
}
TRANSLATED = {  # one paraphrase per intent in another language: noise a word model cannot place
    "refund": ["je veux être remboursé pour la commande {n}", "quiero un reembolso del pedido {n}"],
    "password": ["ich habe mein Passwort vergessen", "olvidé mi contraseña"],
    "invoice": ["où trouver ma facture", "Rechnung für März herunterladen"],
    "shipping": ["où est mon colis {n}", "wo ist mein Paket {n}"],
    "cancel": ["annuler mon abonnement", "Abo kündigen bitte"],
    "pricing": ["combien coûte le plan pro", "precio del plan business"],
    "api": ["wo finde ich meinen API Schlüssel", "la api devuelve error 401"],
    "export": ["exporter mes données en csv", "Daten als CSV exportieren"],
    "delete_account": ["supprimer mon compte", "borrar mi cuenta y mis datos"],
    "crash": ["l'application plante au démarrage", "die App stürzt ständig ab"],
    "email_draft": ["écris un email d'excuse au client", "redacta un correo para el cliente"],
    "summarize": ["résume ce document", "fasse die Notizen zusammen"],
    "sql": ["requête sql pour compter les utilisateurs", "consulta sql para duplicados"],
    "translate": ["traduis ce texte en anglais", "übersetze das ins Englische"],
    "team": ["inviter un collègue dans l'équipe", "Teammitglied einladen"],
    "notifications": ["arrêter les notifications par email", "desactivar las notificaciones"],
}
CHATTER = ["hi", "hello?", "test", "ok", "thanks!", "asdf", "?", "are you there", "lol", "good bot",
           "Traceback (most recent call last): File \"main.py\", line 3, in <module> KeyError: 'x'",
           "SELECT 1;", "👍", "what can you do", "who made you", "tell me a joke"]
SLOTS = {"product": ["jacket", "headphones", "coffee machine", "laptop stand", "sneakers", "desk lamp"],
         "country": ["Canada", "Germany", "Japan", "Brazil", "Australia", "Norway"],
         "app": ["Salesforce", "HubSpot", "Zapier", "Google Sheets", "Slack", "Shopify"],
         "device": ["iPhone", "Android", "iPad", "Pixel 8"],
         "browser": ["Safari", "Firefox", "Chrome", "Edge"],
         "lang": ["French", "German", "Spanish", "Japanese", "Italian"]}
BEFORE = ["hi, ", "hello! ", "quick question: ", "URGENT: ", "hey there, ", "sorry to bother you but ",
          "I've been a customer for three years and ", "my boss asked me to check: ", "pls help, "]
AFTER = [" thanks", " asap", " please help", "?", "!!", " - I'm on the pro plan using the mobile app",
         ". I already tried restarting and clearing the cache, nothing changed",
         " (it worked fine last week)", ". Thank you so much in advance for your help with this"]
IMPATIENT = [" please", " again", "??", " - that did not answer my question", ", I asked already",
             " not what I meant", " you're not helping"]
FOLLOW_UP = ["thanks", "ok and what else", "great, thank you!", "one more thing"]


def _fill(rng: random.Random, template: str) -> str:
    return template.format(n=rng.randrange(10_000, 99_999), **{k: rng.choice(v) for k, v in SLOTS.items()})


def _typo(rng: random.Random, text: str) -> str:
    words = text.split()
    for _ in range(rng.choice((1, 1, 2))):
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) < 4:
            continue
        j = rng.randrange(1, len(w) - 1)
        w = rng.choice((w[:j] + w[j + 1] + w[j] + w[j + 2:], w[:j] + w[j + 1:], w[:j] + w[j] + w[j:]))
        words[i] = w
    return " ".join(words)


def _dress(rng: random.Random, text: str) -> str:
    if rng.random() < 0.15:
        text = _typo(rng, text)
    r = rng.random()
    if r < 0.12:
        text = rng.choice(BEFORE) + text
    elif r < 0.25:
        text += rng.choice(AFTER)
    if rng.random() < 0.3:
        text = text.lower()
    elif rng.random() < 0.3:
        text = text[0].upper() + text[1:]
    return text


def prompts(n: int, seed: int = 7, questions: bool = False) -> tuple[list[str], list[str]]:
    """``n`` prompts and their intents ("noise" for chatter), or ``intent/question`` with
    ``questions``; intents are unevenly frequent (Zipf-like weights), as in a real product."""
    rng = random.Random(seed)
    names = sorted(INTENTS)
    weights = [1 / (1 + 0.25 * k) for k in range(len(names))]
    rng.shuffle(weights)
    texts, labels = [], []
    for intent in rng.choices(names, weights, k=n):
        r = rng.random()
        if r < 0.04:
            texts.append(rng.choice(CHATTER))
            labels.append("noise")
            continue
        if r < 0.09:
            text = _fill(rng, rng.choice(TRANSLATED[intent]))
        else:
            q = rng.randrange(len(INTENTS[intent]))
            text = _dress(rng, _fill(rng, rng.choice(INTENTS[intent][q])))
            if questions:
                intent += f"/{q}"
        texts.append(text)
        labels.append(intent)
    return texts, labels


def rephrase_pairs(n: int, seed: int = 7) -> list[tuple[str, str, bool]]:
    """``n`` (previous prompt, prompt, is it a rephrase) pairs, half rephrases."""
    rng = random.Random(seed)
    names = sorted(INTENTS)
    pairs = []
    for k in range(n):
        intent = rng.choice(names)
        questions = INTENTS[intent]
        q = rng.randrange(len(questions))
        template = rng.choice(questions[q])
        slots = {"n": rng.randrange(10_000, 99_999), **{s: rng.choice(v) for s, v in SLOTS.items()}}
        first = template.format(**slots)
        if k % 2 == 0:  # the same ask again
            way = rng.randrange(4)
            if way == 0:
                second = questions[q][1 - questions[q][:2].index(template)] if template in questions[q][:2] else \
                    questions[q][rng.randrange(2)]  # the first two of a question are paraphrases
                second = second.format(**slots)
            elif way == 1:
                second = first + rng.choice(IMPATIENT)
            elif way == 2:
                second = _typo(rng, first) if rng.random() < 0.5 else first
                first = _typo(rng, first) if second == first else first
            else:
                words = first.split()
                rng.shuffle(words)
                second = " ".join(words)
            pairs.append((first, second, True))
            continue
        way = rng.randrange(3)
        if way == 0 and len(questions) > 1:  # a follow-up on another question of the intent
            other = rng.choice([i for i in range(len(questions)) if i != q])
            second = rng.choice(questions[other]).format(**slots)
        elif way == 1:
            second = rng.choice(FOLLOW_UP)
        else:
            second = _fill(rng, rng.choice(rng.choice(INTENTS[rng.choice([x for x in names if x != intent])])))
        pairs.append((first, second, False))
    return pairs


if __name__ == "__main__":
    texts, labels = prompts(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    for text, label in zip(texts, labels):
        print(f"{label:15} {text}")
    for a, b, same in rephrase_pairs(10):
        print(same, "|", a, "→", b)
