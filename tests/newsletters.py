"""Newsletter emails built in the shapes that Substack, Mailchimp and Buttondown send, and a
plain-text mailing-list post, each around known article sentences.

The markup copies what those platforms put around an article: a hidden preheader,
a "view in browser" link with utm_* parameters, a 1x1 open-tracking pixel from
the platform's tracker host, share and social buttons, and a footer with
unsubscribe and preference links. The tests check that the article's sentences
survive and the rest does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone

ARTICLE = (
    "The city council approved a new housing plan on Tuesday after months of debate.",
    "The plan allows taller buildings near the three busiest tram stops in the east of the city.",
    "Supporters say it could add four thousand homes within a decade.",
    "Critics warned that the schools in the area are already full and asked for a new primary school.",
    "The mayor promised that a review of school places would be published before the summer.",
    "Construction on the first sites is expected to begin next spring, once the permits are issued.",
)
# Text that must never reach a summary.
BOILERPLATE = (
    "unsubscribe",
    "manage your preferences",
    "update your preferences",
    "view this email in your browser",
    "forwarded this email",
    "preheader",
    "you are receiving this",
    "our mailing address",
    "follow us",
)
TRACKER_HOSTS = ("eotrx.substackcdn.com", "list-manage.com", "buttondown.email", "mandrillapp.com")


@dataclass(frozen=True)
class Fixture:
    """A newsletter message and what its cleaned article should be."""

    shape: str
    message: EmailMessage
    web_link: str | None  # the article link expected, tracking parameters removed


def _message(sender: str, to: str, subject: str, message_id: str, html: str | None, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(datetime(2026, 11, 26, 8, 30, tzinfo=timezone.utc))
    message["List-Unsubscribe"] = "<https://example.invalid/unsubscribe?u=1>"
    message.set_content(text, cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def substack(to: str, subject: str = "City approves housing plan", message_id: str = "<post-12345@substack.com>") -> Fixture:
    paragraphs = "".join(f'<p style="margin:0 0 20px;line-height:26px;">{s}</p>' for s in ARTICLE)
    html = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Housing plan</title>
<style>.preview {{ display:none }}</style></head><body>
<div class="preview" style="display:none;font-size:1px;color:#fff;max-height:0;overflow:hidden;">Preheader: the tram stops get taller, and more&#847; &zwnj;&nbsp;&#847;</div>
<table role="presentation" width="100%"><tr><td class="post-title">
<h1><a href="https://citynotes.substack.com/p/housing-plan?utm_source=substack&amp;utm_medium=email&amp;r=4x2a&amp;token=eyJ1c2VyX2lkIjo">{subject}</a></h1>
<p class="meta">By Ada Writer &middot; Nov 26</p></td></tr>
<tr><td><table><tr>
<td><a href="https://substack.com/app-link/post?publication_id=1&amp;post_id=2&amp;utm_source=post-email-title&amp;isFreemail=true&amp;r=4x2a&amp;token=x">READ IN APP</a></td>
</tr></table></td></tr>
<tr><td class="body markup">{paragraphs}</td></tr>
<tr><td><table class="post-ufi"><tr>
<td><a href="https://citynotes.substack.com/action/like?token=x">Like</a></td>
<td><a href="https://citynotes.substack.com/p/housing-plan/comments?token=x">Comment</a></td>
<td><a href="https://substack.com/restack?token=x">Restack</a></td></tr></table></td></tr>
<tr><td class="footer"><p>&copy; 2026 Ada Writer<br>548 Market Street PMB 72296, San Francisco, CA 94104<br>
<a href="https://citynotes.substack.com/action/disable_email?token=x">Unsubscribe</a></p>
<p><a href="https://substack.com/signup?utm_source=substack&amp;utm_medium=email&amp;utm_content=footer">Start writing</a></p></td></tr>
</table><img src="https://eotrx.substackcdn.com/open?token=eyJtIjoiMTIz&amp;utm_source=substack" width="1" height="1" alt="" style="height:1px!important;width:1px!important;border-width:0!important;">
</body></html>"""
    text = (
        "View this post on the web at https://citynotes.substack.com/p/housing-plan?utm_source=email\n\n"
        + "\n\n".join(ARTICLE)
        + "\n\nUnsubscribe https://citynotes.substack.com/action/disable_email?token=x\n"
    )
    return Fixture(
        "substack",
        _message("Ada Writer from City Notes <citynotes@substack.com>", to, subject, message_id, html, text),
        "https://citynotes.substack.com/p/housing-plan",
    )


def mailchimp(
    to: str, subject: str = "City approves housing plan", message_id: str = "<0.1.2.3A.1D9C.mc123@mail210.atl221.mcdlv.net>"
) -> Fixture:
    paragraphs = "".join(
        f'<p style="margin:10px 0;padding:0;color:#202020;font-family:Helvetica;font-size:16px;line-height:150%;text-align:left;">{s}</p>'
        for s in ARTICLE
    )
    html = f"""<!doctype html><html xmlns="http://www.w3.org/1999/xhtml"><head><title>*|MC:SUBJECT|*</title>
<!--[if mso]><xml><o:OfficeDocumentSettings><o:AllowPNG/></o:OfficeDocumentSettings></xml><![endif]-->
<style type="text/css">p{{margin:10px 0;}} .mcnPreviewText{{display:none !important;}}</style></head>
<body><!--*|IF:MC_PREVIEW_TEXT|*--><!--[if !gte mso 9]><!----><span class="mcnPreviewText" style="display:none; font-size:0px; line-height:0px; max-height:0px; max-width:0px; opacity:0; overflow:hidden; visibility:hidden; mso-hide:all;">Preheader text: the council votes on taller buildings</span><!--<![endif]-->
<center><table align="center" border="0" cellpadding="0" cellspacing="0" height="100%" width="100%" id="bodyTable">
<tr><td align="center" valign="top" id="bodyCell">
<table class="mcnTextBlock"><tbody class="mcnTextBlockOuter"><tr><td valign="top" class="mcnTextBlockInner">
<table align="left" class="mcnTextContentContainer"><tbody><tr><td valign="top" class="mcnTextContent" style="padding:9px 18px;">
<a href="https://us21.campaign-archive.com/?e=abc123&amp;u=5b9f&amp;id=77aa&amp;utm_source=newsletter&amp;utm_medium=email&amp;mc_cid=77aa&amp;mc_eid=abc123" target="_blank">View this email in your browser</a>
</td></tr></tbody></table></td></tr></tbody></table>
<table class="mcnTextBlock"><tbody><tr><td class="mcnTextContent"><h1>{subject}</h1>{paragraphs}</td></tr></tbody></table>
<table class="mcnFollowBlock"><tbody><tr><td align="center">
<a href="https://twitter.com/citynotes" target="_blank"><img src="https://cdn-images.mailchimp.com/icons/social-block-v2/color-twitter-48.png" alt="Twitter" width="24"></a>
<a href="https://www.facebook.com/citynotes" target="_blank"><img src="https://cdn-images.mailchimp.com/icons/social-block-v2/color-facebook-48.png" alt="Facebook" width="24"></a>
<a href="https://www.instagram.com/citynotes" target="_blank">Instagram</a>
</td></tr></tbody></table>
<table class="mcnTextBlock"><tbody><tr><td class="mcnTextContent" style="font-size:12px;">
<em>Copyright &copy; 2026 City Notes, All rights reserved.</em><br>You are receiving this email because you opted in via our website.<br><br>
<strong>Our mailing address is:</strong><br>City Notes, 1 Main St, Springfield<br><br>
Want to change how you receive these emails?<br>You can <a href="https://citynotes.us21.list-manage.com/profile?u=5b9f&amp;id=1a2b&amp;e=abc123">update your preferences</a> or <a href="https://citynotes.us21.list-manage.com/unsubscribe?u=5b9f&amp;id=1a2b&amp;e=abc123">unsubscribe from this list</a>.
</td></tr></tbody></table>
<table><tr><td><a href="http://eepurl.com/xyz"><img src="https://cdn-images.mailchimp.com/monkey_rewards/intuit-mc-rewards-text-dark.png" alt="Intuit Mailchimp" width="139"></a></td></tr></table>
</td></tr></table></center>
<img src="https://citynotes.us21.list-manage.com/track/open.php?u=5b9f&amp;id=77aa&amp;e=abc123" height="1" width="1" alt="">
</body></html>"""
    text = (
        "** City approves housing plan\n\n"
        + "\n\n".join(ARTICLE)
        + "\n\nunsubscribe from this list https://citynotes.us21.list-manage.com/unsubscribe?u=5b9f\n"
    )
    return Fixture(
        "mailchimp",
        _message("City Notes <news@citynotes.example>", to, subject, message_id, html, text),
        "https://us21.campaign-archive.com/?e=abc123&u=5b9f&id=77aa",
    )


def buttondown(
    to: str, subject: str = "City approves housing plan", message_id: str = "<buttondown-5f1e@buttondown.email>"
) -> Fixture:
    paragraphs = "".join(f"<p>{s}</p>" for s in ARTICLE)
    html = f"""<html><head><style>body {{ font-family: sans-serif; }}</style></head><body>
<div style="display: none; max-height: 0px; overflow: hidden;">A short preview line for the inbox list</div>
<div class="email-body-content"><p><a href="https://buttondown.com/citynotes/archive/city-approves-housing-plan/?utm_source=citynotes&amp;utm_medium=email&amp;utm_campaign=housing">View in browser</a></p>
<h1>{subject}</h1>{paragraphs}</div>
<div class="email-footer"><p>Did someone forward this email to you? <a href="https://buttondown.com/citynotes">Subscribe here</a>.</p>
<p><a href="https://buttondown.com/unsubscribe/abcd">Unsubscribe</a> &middot; <a href="https://buttondown.com/citynotes/management/abcd">Manage your subscription</a></p>
<p>Powered by Buttondown, the easiest way to start and grow your newsletter.</p></div>
<img src="https://buttondown.email/emails/5f1e/open?subscriber=abcd" width="1" height="1" alt="">
</body></html>"""
    text = "\n\n".join(ARTICLE) + "\n\nUnsubscribe: https://buttondown.com/unsubscribe/abcd\n"
    return Fixture(
        "buttondown",
        _message("City Notes <citynotes@buttondown.email>", to, subject, message_id, html, text),
        "https://buttondown.com/citynotes/archive/city-approves-housing-plan/",
    )


def plain_list(
    to: str, subject: str = "City approves housing plan", message_id: str = "<20261126083000.GA1234@lists.example.org>"
) -> Fixture:
    body = "\n\n".join(ARTICLE)
    text = f"""Hello all,

{body}

Regards,
Ada

-- 
Ada Writer, City Notes editor
_______________________________________________
city-announce mailing list
city-announce@lists.example.org
To unsubscribe send an email to city-announce-leave@lists.example.org
https://lists.example.org/mailman/listinfo/city-announce?utm_source=list
"""
    message = _message("Ada Writer <ada@example.org>", to, f"[city-announce] {subject}", message_id, None, text)
    message["List-Id"] = "<city-announce.lists.example.org>"
    return Fixture("plain list", message, None)


SHAPES = (substack, mailchimp, buttondown, plain_list)


def kept_share(text: str) -> float:
    """The share of the article's known sentences found whole in `text`."""
    flat = " ".join(text.split())
    return sum(sentence in flat for sentence in ARTICLE) / len(ARTICLE)
