// Screens whose APIs are not in this gateway yet: they say what will be here.

export function Upcoming({ title, what }: { title: string; what: string }) {
  return (
    <section class="page">
      <h1 tabIndex={-1}>{title}</h1>
      <p>
        Coming with the next release of the gateway's API: here you will {what}.
      </p>
    </section>
  );
}
