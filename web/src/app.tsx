import { useEffect, useState } from "preact/hooks";
import { session, type User } from "./auth/session";
import type { RuntimeConfig } from "./config";
import { ChannelDetail } from "./pages/channel";
import { Channels } from "./pages/channels";
import { Inbox } from "./pages/inbox";
import { Upcoming } from "./pages/upcoming";
import { SignIn } from "./pages/signin";
import { Link, navigate, usePath } from "./router";

const NAV = [
  { href: "/inbox", label: "Inbox" },
  { href: "/channels", label: "Channels" },
  { href: "/contacts", label: "Contacts" },
  { href: "/broadcasts", label: "Broadcasts" },
  { href: "/templates", label: "Templates" },
];

function useUser(): User | null {
  const [user, setUser] = useState(session.user);
  useEffect(() => session.subscribe(() => setUser(session.user)), []);
  return user;
}

function page(path: string, user: User) {
  const [, section, id] = path.split("/");
  switch (section) {
    case "inbox":
      return <Inbox conversationId={id ?? null} />;
    case "channels":
      return id ? <ChannelDetail id={id} admin={user.admin} /> : <Channels admin={user.admin} />;
    case "contacts":
      return <Upcoming title="Contacts" what="search contacts, see their consent, export what is held about one, and erase a contact" />;
    case "broadcasts":
      return <Upcoming title="Broadcasts" what="send a template to a tag or a pasted list, follow its progress and results per recipient, and cancel it" />;
    case "templates":
      return <Upcoming title="Templates" what="see each channel's WhatsApp templates with their approval status, and sync them from Meta or Twilio" />;
    default:
      return null;
  }
}

export function App({ config }: { config: RuntimeConfig }) {
  const user = useUser();
  const path = usePath();

  useEffect(() => {
    if (user && (path === "/" || path === "/signin")) navigate("/inbox", true);
  }, [user, path]);

  // A new screen: move focus to its heading so that a screen reader announces where the user is.
  const section = path.split("/")[1];
  useEffect(() => {
    if (user) document.querySelector<HTMLElement>("main h1")?.focus();
  }, [section, !!user]);

  if (!user) return <SignIn config={config} />;
  const content = page(path, user);
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">WhatsApp Gateway</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.href}>
                <Link href={item.href} aria-current={section === item.href.slice(1) ? "page" : undefined}>
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            {user.email}
            {user.tenantId ? ` · ${user.tenantId}` : ""}
          </span>
          <button type="button" class="link" onClick={() => session.end()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        {content ?? (
          <>
            <h1 tabIndex={-1}>Page not found</h1>
            <p>
              <Link href="/inbox">Go to the inbox</Link>
            </p>
          </>
        )}
      </main>
    </>
  );
}
