#!/usr/bin/env python3
"""Support-ticket routing chats for `owl finetune`: a ticket in, a one-word team out.

Writes tests/fixtures/finetune/tickets-{train,heldout}.jsonl ({"messages": [...]} per line).
The held-out tickets are written differently from the training ones: other sentence
patterns, other products and details, so a model that merely memorised the training lines
does not pass. Deterministic (fixed seed).

    python3 scripts/make_ticket_data.py
"""
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ["billing", "shipping", "technical", "account", "returns", "sales"]

TRAIN = {
    "billing": [
        "I was charged twice for my {plan} subscription this month.",
        "My invoice for {month} shows the wrong amount.",
        "Why did my card get billed {amount} when my plan costs less?",
        "Please send me a receipt for the payment I made in {month}.",
        "The VAT on my last invoice looks incorrect.",
        "I need to update the credit card you charge every month.",
    ],
    "shipping": [
        "My order {order} has not arrived yet and it has been {days} days.",
        "The tracking number for order {order} does not work.",
        "Can you deliver my package to a different address?",
        "The courier says my parcel was delivered but I never got it.",
        "How long does shipping to {country} usually take?",
        "My {product} is stuck in customs in {country}.",
    ],
    "technical": [
        "The {product} app crashes every time I open it.",
        "I get error {code} when I try to sync my {product}.",
        "My {product} will not connect to the wifi anymore.",
        "The screen of my {product} flickers after the last update.",
        "The battery of my {product} drains in two hours.",
        "Bluetooth pairing with my {product} keeps failing.",
    ],
    "account": [
        "I forgot my password and the reset email never comes.",
        "How do I change the email address on my account?",
        "Please delete my account and all my data.",
        "My account is locked after too many login attempts.",
        "I want to add a second user to my account.",
        "Two-factor codes are not reaching my phone, I cannot log in.",
    ],
    "returns": [
        "I would like to return the {product} I bought last week.",
        "The {product} arrived broken, I want to send it back.",
        "How do I print a return label for order {order}?",
        "I returned my {product} {days} days ago and still have no refund.",
        "Can I exchange my {product} for a different size?",
        "The {product} is not what I ordered, I need to return it.",
    ],
    "sales": [
        "Do you offer discounts for teams of {seats} people?",
        "I want a quote for {seats} licenses of the {plan} plan.",
        "Is the {product} available in other colours?",
        "What is the difference between the {plan} and the enterprise plan?",
        "Can I get a demo of your product for my company?",
        "Do you have a student price for the {plan} plan?",
    ],
}

HELDOUT = {
    "billing": [
        "hey, two identical charges showed up on my bank statement from you guys",
        "Your bill says {amount} but the website price was lower. Explain?",
        "Need a corrected invoice with our company name on it.",
    ],
    "shipping": [
        "where is my stuff?? ordered {days} days ago, still nothing",
        "Package shows 'in transit' for a week now, order {order}.",
        "Could the delivery be left with my neighbour instead?",
    ],
    "technical": [
        "after updating firmware the {product} just shows a black screen",
        "Sync fails with code {code}, tried reinstalling already.",
        "{product} overheats and shuts down on its own",
    ],
    "account": [
        "cant sign in, it says my profile is locked",
        "Want to switch the login email to my work address.",
        "please close my profile permanently",
    ],
    "returns": [
        "the {product} i got is damaged, how do i send it back",
        "Still waiting for money back on the {product} I shipped back.",
        "Wrong item in the box. Want to swap it.",
    ],
    "sales": [
        "what would {seats} seats cost us per year?",
        "Any bulk pricing if our school buys {seats} units?",
        "Interested in the enterprise tier, who can I talk to?",
    ],
}

FILL = {
    "plan": ["Pro", "Basic", "Premium", "Family"],
    "month": ["March", "July", "October", "January"],
    "amount": ["$49", "$120", "€35", "£18"],
    "order": ["#48213", "#99120", "#10577", "#77341"],
    "days": ["5", "10", "12", "three"],
    "country": ["Canada", "Germany", "Japan", "Brazil"],
    "product": ["smart watch", "headphones", "tablet", "router", "camera", "speaker"],
    "code": ["E42", "503", "0x80070005", "SYNC-7"],
    "seats": ["25", "50", "200", "12"],
}


def fill(t, rng):
    for k, vs in FILL.items():
        t = t.replace("{" + k + "}", rng.choice(vs))
    return t


def chats(templates, n, rng):
    out = []
    routes = list(templates)
    while len(out) < n:
        for r in routes:
            t = fill(rng.choice(templates[r]), rng)
            out.append({"messages": [
                {"role": "user", "content": f"Route this support ticket: {t}"},
                {"role": "assistant", "content": r},
            ]})
    rng.shuffle(out)
    return out[:n]


def main():
    rng = random.Random(7)
    dst = ROOT / "tests/fixtures/finetune"
    dst.mkdir(parents=True, exist_ok=True)
    for name, templates, n in [("train", TRAIN, 300), ("heldout", HELDOUT, 60)]:
        rows = chats(templates, n, rng)
        (dst / f"tickets-{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{name}: {len(rows)} chats")


if __name__ == "__main__":
    main()
